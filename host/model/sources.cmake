# host/model — decoder-only transformers (GPT-2, LLaMA) built on the op dispatchers.
list(APPEND CULORA_SOURCES
  host/model/model.c
  host/model/model_layout.c
  host/model/model_weights.c
  host/model/model_lora.c
  host/model/model_forward.c
  host/model/model_backward.c
  host/model/model_optim.c
  host/model/model_generate.c
  host/model/model_save.c
  host/model/model_relora.c
)
