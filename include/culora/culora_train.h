/*
 * culora_train.h — the trainer: AdamW on a culora_model's trainable parameters with gradient
 * accumulation, clipping, learning-rate schedules, evaluation, non-finite-step protection,
 * data parallelism through a culora_dist, metrics, and checkpoints that resume bit-identically.
 *
 * One optimizer step:
 *   1. read grad_accum micro-batches from the training loader;
 *   2. forward + backward each, gradients summed so that the step's gradient is the exact mean over
 *      every loss token of the step on every rank;
 *   3. all-reduce the gradients (one call on one flat buffer) when a communicator is given;
 *   4. if the loss or the gradient norm is not finite, skip the update and count it (stop with
 *      CULORA_ERR_NUMERIC after max_bad_steps); else clip to max_grad_norm and apply AdamW with
 *      the scheduled learning rate.
 * Same inputs, seed and world size give bit-identical losses on the CPU backend.
 */
#ifndef CULORA_TRAIN_H
#define CULORA_TRAIN_H

#include "culora.h"
#include "culora_data.h"
#include "culora_dist.h"
#include "culora_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct culora_trainer culora_trainer;

typedef enum culora_lr_schedule {
    CULORA_LR_CONSTANT = 0,        /* linear warmup, then constant */
    CULORA_LR_LINEAR = 1,          /* warmup, then linear decay to 0 (transformers) */
    CULORA_LR_COSINE = 2,          /* warmup, then cosine decay to 0 (transformers) */
    CULORA_LR_COSINE_MIN = 3,      /* ReLoRA's cosine with a floor, cyclical */
    CULORA_LR_COSINE_RESTARTS = 4  /* ReLoRA's jagged cosine: re-warmup after every restart */
} culora_lr_schedule;

/* How the LoRA AdamW moments are pruned at a ReLoRA restart (docs/relora.md). Each moment tensor
 * (exp_avg, exp_avg_sq of every A and B) independently, as the reference's optimizer_reset. */
typedef enum culora_relora_reset {
    CULORA_RELORA_RESET_MAGNITUDE = 0, /* zero |x| <= quantile(|x|, ratio) (torch.quantile, fp32) */
    CULORA_RELORA_RESET_RANDOM = 1,    /* zero each value with probability ratio (counter-based RNG) */
    CULORA_RELORA_RESET_ZERO = 2,      /* zero every value */
    CULORA_RELORA_RESET_NONE = 3       /* keep the moments */
} culora_relora_reset;

/* What happened in one step (or one evaluation), for progress lines and metrics. */
typedef struct culora_step_info {
    int64_t step;          /* optimizer steps done (1-based) */
    int64_t total_steps;
    int32_t is_eval;       /* 1: an evaluation record (eval_loss set), 0: a training step */
    int32_t skipped;       /* 1: non-finite loss or gradient, no update */
    float loss;            /* the step's mean loss over its loss tokens (all ranks) */
    float eval_loss;       /* evaluation records */
    float lr;              /* learning rate used */
    float grad_norm;       /* global gradient norm before clipping */
    int64_t tokens;        /* input tokens processed in the step (all ranks) */
    int64_t loss_tokens;   /* tokens that carried loss (all ranks) */
    double tokens_per_s;   /* input tokens per second over this step */
    double elapsed_s;      /* since the trainer was created (or resumed) */
    int64_t bad_steps;     /* skipped steps so far */
    int64_t relora_restarts; /* ReLoRA merge-and-restarts so far (one happened in this step when it grew) */
} culora_step_info;

/* Called after every step and evaluation (from the calling thread). Return non-zero to stop. */
typedef int (*culora_train_callback)(const culora_step_info *info, void *user);

typedef struct culora_train_params {
    uint32_t struct_size;          /* set by CULORA_TRAIN_PARAMS_INIT */
    uint32_t api_version;
    int64_t total_steps;           /* optimizer steps (>= 1) */
    int32_t grad_accum;            /* micro-batches per step (>= 1) */
    double lr, beta1, beta2, eps, weight_decay; /* fp64, as torch's Python floats */
    double max_grad_norm;          /* clip the global gradient norm to this; 0: no clipping */
    int32_t schedule;              /* culora_lr_schedule */
    int64_t warmup_steps;
    double min_lr_ratio;           /* COSINE_MIN, COSINE_RESTARTS */
    int64_t cycle_length;          /* COSINE_MIN cycle; COSINE_RESTARTS restart interval */
    int64_t restart_warmup;        /* COSINE_RESTARTS */
    int64_t eval_every;            /* evaluate every this many steps and at the end; 0: never */
    int64_t eval_batches;          /* batches per evaluation; 0: one epoch of the eval loader */
    int32_t max_bad_steps;         /* skipped non-finite steps tolerated before CULORA_ERR_NUMERIC */
    const char *checkpoint_dir;    /* checkpoints go to checkpoint_dir/checkpoint-<step>; NULL: none */
    int64_t checkpoint_every;      /* steps; 0: only at the end */
    int32_t keep_checkpoints;      /* keep the newest this many; 0: all */
    const char *metrics_path;      /* JSONL, one object per step / evaluation (appended); NULL: none */
    culora_dist *dist;             /* data-parallel communicator; NULL: one process */
    culora_train_callback callback;
    void *user;
    /* ReLoRA (a LORA-mode model; docs/relora.md). Restarts come after the steps u with
     * (u − warm_start_steps) % relora_every == 1 and u − warm_start_steps > relora_every, as the
     * reference's trigger; with COSINE_RESTARTS, cycle_length 0 means relora_every. */
    int64_t relora_every;          /* merge every LoRA pair into the base and restart it; 0: never (>= 2) */
    int32_t relora_reset;          /* culora_relora_reset: the LoRA AdamW moments at a restart */
    double relora_reset_ratio;     /* fraction of each moment tensor zeroed (MAGNITUDE, RANDOM) */
    int64_t warm_start_steps;      /* train every parameter full-rank for this many steps first, then LoRA
                                      with a fresh optimizer and schedule (as the reference's warm start) */
    int32_t train_non_lora;        /* 1: also train every parameter outside the LoRA-adapted linears full-rank
                                      (embeddings, norms, lm_head, unadapted linears), as the reference does */
    uint64_t relora_seed;          /* re-initialisation of A and random pruning at restarts (every rank alike) */
    double warm_start_lr;          /* peak learning rate of the warm start; 0: lr */
} culora_train_params;

#define CULORA_TRAIN_PARAMS_INIT                                                                       \
    { sizeof(culora_train_params), CULORA_API_VERSION, 100, 1, 1e-4, 0.9, 0.999, 1e-8, 0.0, 1.0, \
      CULORA_LR_COSINE, 0, 0.1, 0, 0, /* eval */ 0, 0, /* max_bad_steps */ 3, /* checkpoints */ NULL, 0, 0, \
      NULL, NULL, NULL, NULL, /* relora */ 0, CULORA_RELORA_RESET_MAGNITUDE, 0.999, 0, 0, 0u, 0.0 }

/* A trainer for model (which must be in a training mode) reading train (and eval, may be NULL).
 * The loaders' batch size × seq_len must fit the model's buffers. With a communicator every rank
 * must call it: the trainable weights of rank 0 are broadcast to every rank (as PyTorch DDP does),
 * so ranks may initialise LoRA from different seeds. */
CULORA_API CULORA_NODISCARD culora_status culora_trainer_create(culora_model *model, culora_loader *train,
                                                                culora_loader *eval,
                                                                const culora_train_params *params,
                                                                culora_trainer **out);
/* NULL: no-op. */
CULORA_API void culora_trainer_destroy(culora_trainer *tr);

/* One optimizer step; *info (may be NULL) describes it. */
CULORA_API CULORA_NODISCARD culora_status culora_trainer_step(culora_trainer *tr, culora_step_info *info);
/* Steps until total_steps (or a callback asks to stop), evaluating and checkpointing as configured;
 * a final checkpoint is written when checkpoint_dir is set. */
CULORA_API CULORA_NODISCARD culora_status culora_trainer_run(culora_trainer *tr);
/* Mean loss over the eval loader's next eval_batches batches (dropout off). */
CULORA_API CULORA_NODISCARD culora_status culora_trainer_evaluate(culora_trainer *tr, float *loss);
/* Optimizer steps done. */
CULORA_API int64_t culora_trainer_step_count(const culora_trainer *tr);

/* Writes a checkpoint directory (atomically: a temporary directory renamed into place) holding the
 * adapter in PEFT format (LoRA modes), the trainer state (fp32 parameters and AdamW moments, step,
 * RNG and data position, world size) and a manifest with each file's size and CRC-32. Only rank 0
 * writes; every rank must call it. With several ranks a checksum of the weights is compared first:
 * replicas that differ give CULORA_ERR_MISMATCH on every rank, naming the rank, and nothing is written. */
CULORA_API CULORA_NODISCARD culora_status culora_trainer_save_checkpoint(culora_trainer *tr, const char *dir);
/* Continues from a checkpoint directory, or from the newest complete checkpoint-<step> inside dir.
 * The model, loaders and world size must match the run that wrote it (refused otherwise, with a
 * message naming the difference); a truncated or corrupted checkpoint is refused. */
CULORA_API CULORA_NODISCARD culora_status culora_trainer_resume(culora_trainer *tr, const char *dir);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_TRAIN_H */
