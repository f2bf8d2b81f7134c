# tests/nn — transformer ops (host/nn_ops.h). test_nn: the CPU reference against hand-computed
# values, fp64 references, central finite differences and PyTorch fixtures (tests/data/nn/,
# written by tests/gen/gen_nn_fixtures.py); dispatcher argument checks. test_nn_cuda: the CUDA
# backend against the CPU backend (skips without a GPU).
culora_add_gtest(test_nn LABELS cpu SOURCES
  nn/test_norm.cpp
  nn/test_embedding_rope.cpp
  nn/test_attention.cpp
  nn/test_activation.cpp
  nn/test_cross_entropy.cpp
  nn/test_optim.cpp
  nn/test_nn_dispatch.cpp
  nn/test_nn_torch.cpp
)
if(CULORA_CUDA)
  culora_add_gtest(test_nn_cuda LABELS gpu SOURCES
    nn/test_nn_cuda_layers.cpp
    nn/test_nn_cuda_attention.cpp
    nn/test_nn_cuda_train.cpp
  )
endif()
