/*
 * trainer.h — the culora_trainer object (internal), shared by trainer.c and checkpoint.c.
 */
#ifndef CULORA_HOST_TRAIN_TRAINER_H
#define CULORA_HOST_TRAIN_TRAINER_H

#include "culora/culora_train.h"

#include "../context.h"
#include "../model/model.h"
#include "schedule.h"

struct culora_trainer {
    culora_model *model;
    culora_context *ctx;
    culora_loader *train, *eval;
    culora_train_params p;      /* strings point at the copies below */
    char *ckpt_dir, *metrics_path;
    struct culora_schedule sched;
    int64_t step;               /* optimizer steps done */
    int64_t adam_step;          /* updates applied (skipped steps do not count: Adam's bias correction) */
    int64_t bad_steps;
    int32_t rank, world;
    int32_t B, T;               /* training batch rows and sequence length */
    int32_t *ids, *tgts;        /* host [grad_accum][B·T] */
    int64_t *mb_tokens;         /* [grad_accum] loss tokens per micro-batch */
    uint64_t *gather;           /* [world] */
    double t_start;
    culora_step_info last;
    struct trainer_relora *relora; /* ReLoRA state (relora.c); NULL when the run uses none */
};

double trainer_now(void);
/* Sums over ranks (exact for integers; doubles in rank order, so every rank gets the same bits). */
culora_status trainer_sum_u64(culora_trainer *tr, uint64_t *v);
culora_status trainer_sum_f64(culora_trainer *tr, double *v);
/* Data parallel: every rank must hold the same trainable weights. Fails on every rank with
 * CULORA_ERR_MISMATCH, naming `when` and the first differing rank, when a checksum of the fp32
 * master weights differs (call at checkpoints and after ReLoRA merges/resets; all ranks call it). */
culora_status trainer_check_replicas(culora_trainer *tr, const char *when);

#endif /* CULORA_HOST_TRAIN_TRAINER_H */
