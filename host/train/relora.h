/*
 * relora.h — ReLoRA in the trainer (host/train/relora.c): the hooks trainer.c and checkpoint.c
 * call. Every hook is a no-op returning CULORA_OK when the run uses no ReLoRA feature
 * (relora_every, warm_start_steps and train_non_lora all 0: tr->relora is NULL).
 */
#ifndef CULORA_HOST_TRAIN_RELORA_H
#define CULORA_HOST_TRAIN_RELORA_H

#include "trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* At trainer creation, before the schedule is checked and the weights are broadcast: validates
 * the ReLoRA parameters, makes the non-LoRA parameters trainable (train_non_lora), enters the
 * warm start, keeps fp32 masters of the adapted base weights (bf16 backends), and replaces
 * tr->sched by the schedule of the LoRA phase. */
culora_status trainer_relora_create(culora_trainer *tr);
void trainer_relora_destroy(culora_trainer *tr);

/* Learning-rate multiplier at optimizer step `step` (0-based): the warm start's schedule, then the
 * LoRA phase's (tr->sched) counted from the end of the warm start. */
double trainer_lr_multiplier(const culora_trainer *tr, int64_t step);

/* After step tr->step's update: leaves the warm start, or merges and restarts every LoRA pair
 * when the step is a restart step; sets in->relora_restarts. */
culora_status trainer_relora_after_step(culora_trainer *tr, culora_step_info *in);

/* Checkpoints: adds the merged base weights and the restart counters to the trainer-state writer
 * (buffers stay valid until the next call or destroy). */
culora_status trainer_relora_save(culora_trainer *tr, culora_safetensors_writer *w);
/* Before a checkpoint of `step` is restored: puts the model in that step's phase (warm start or
 * LoRA), so that its trainable layout matches the checkpoint's. */
culora_status trainer_relora_prepare_resume(culora_trainer *tr, int64_t step);
/* After the flat state is restored: the merged base weights and the counters. */
culora_status trainer_relora_restore(culora_trainer *tr, const culora_safetensors *st, const char *ck);

#ifdef __cplusplus
}
#endif

#endif /* CULORA_HOST_TRAIN_RELORA_H */
