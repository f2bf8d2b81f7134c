# host/nn — transformer ops: dispatchers (argument checks) here, CPU references in host/cpu/,
# CUDA kernels in kernels/. Op table and args structs: host/nn_ops.h. Docs: docs/kernels/nn.md.
list(APPEND CULORA_SOURCES
  host/nn/nn_check.c
  host/nn/embedding.c
  host/nn/norm.c
  host/nn/rope.c
  host/nn/attention.c
  host/nn/activation.c
  host/nn/cross_entropy.c
  host/nn/optim.c
  host/cpu/embedding.c
  host/cpu/norm.c
  host/cpu/rope.c
  host/cpu/attention.c
  host/cpu/activation.c
  host/cpu/cross_entropy.c
  host/cpu/optim.c
)
list(APPEND CULORA_CUDA_SOURCES
  kernels/embedding.cu
  kernels/norm.cu
  kernels/rope.cu
  kernels/attention.cu
  kernels/activation.cu
  kernels/cross_entropy.cu
  kernels/optim.cu
)
# The CPU cross-entropy's exp loop (exp_nonpos) and the activations' exp_f64 vectorise only when the
# compiler may evaluate their comparisons and polynomials unconditionally; culora never enables
# floating-point traps, so -fno-trapping-math only lets it compute every lane (cross-entropy 2x
# faster at V = 50257, SSE2 baseline).
set_source_files_properties(host/cpu/cross_entropy.c host/cpu/activation.c PROPERTIES COMPILE_OPTIONS
                            -fno-trapping-math)
