// test_dist_env.cpp — launcher discovery (torchrun, Open MPI, Slurm, PMI) and the one-process
// communicator.
#include "test_util.h"

#include "culora/culora_dist.h"

namespace {

culora_status parse(culora_context *ctx, std::vector<std::string> vars, culora_dist_env *env)
{
    std::vector<char *> envp;
    for (auto &v : vars) envp.push_back(v.data());
    envp.push_back(nullptr);
    return culora_dist_env_parse(ctx, envp.data(), env);
}

}  // namespace

TEST(DistEnv, NoLauncherMeansOneProcess)
{
    auto ctx = culora_test::make_ctx(CULORA_BACKEND_CPU);
    culora_dist_env env;
    ASSERT_EQ(parse(ctx.get(), {"HOME=/root", "PATH=/bin"}, &env), CULORA_OK);
    EXPECT_EQ(env.launcher, CULORA_LAUNCHER_NONE);
    EXPECT_EQ(env.rank, 0);
    EXPECT_EQ(env.world_size, 1);
    EXPECT_EQ(env.master_port, 29500);
    ASSERT_EQ(culora_dist_env_parse(ctx.get(), nullptr, &env), CULORA_OK);
    EXPECT_EQ(env.world_size, 1);
}

TEST(DistEnv, EachLauncher)
{
    auto ctx = culora_test::make_ctx(CULORA_BACKEND_CPU);
    culora_dist_env env;
    ASSERT_EQ(parse(ctx.get(), {"RANK=3", "WORLD_SIZE=8", "LOCAL_RANK=1", "LOCAL_WORLD_SIZE=2", "MASTER_ADDR=node7",
                                "MASTER_PORT=1234"},
                    &env),
              CULORA_OK);
    EXPECT_EQ(env.launcher, CULORA_LAUNCHER_TORCHRUN);
    EXPECT_EQ(env.rank, 3);
    EXPECT_EQ(env.world_size, 8);
    EXPECT_EQ(env.local_rank, 1);
    EXPECT_EQ(env.local_world_size, 2);
    EXPECT_STREQ(env.master_addr, "node7");
    EXPECT_EQ(env.master_port, 1234);
    // real torchrun (static rendezvous): its agent's store listens at MASTER_PORT, culora takes the next
    ASSERT_EQ(parse(ctx.get(), {"RANK=0", "WORLD_SIZE=2", "MASTER_PORT=29400", "TORCHELASTIC_USE_AGENT_STORE=True"},
                    &env),
              CULORA_OK);
    EXPECT_EQ(env.master_port, 29401);
    ASSERT_EQ(parse(ctx.get(), {"RANK=0", "WORLD_SIZE=2", "MASTER_PORT=29400", "TORCHELASTIC_USE_AGENT_STORE=False"},
                    &env),
              CULORA_OK);
    EXPECT_EQ(env.master_port, 29400);

    ASSERT_EQ(parse(ctx.get(), {"OMPI_COMM_WORLD_RANK=5", "OMPI_COMM_WORLD_SIZE=6", "OMPI_COMM_WORLD_LOCAL_RANK=2",
                                "OMPI_COMM_WORLD_LOCAL_SIZE=3"},
                    &env),
              CULORA_OK);
    EXPECT_EQ(env.launcher, CULORA_LAUNCHER_OPENMPI);
    EXPECT_EQ(env.rank, 5);
    EXPECT_EQ(env.local_rank, 2);
    EXPECT_EQ(env.local_world_size, 3);

    ASSERT_EQ(parse(ctx.get(), {"SLURM_PROCID=9", "SLURM_NTASKS=16", "SLURM_LOCALID=1", "SLURM_NTASKS_PER_NODE=8(x2)"},
                    &env),
              CULORA_OK);
    EXPECT_EQ(env.launcher, CULORA_LAUNCHER_SLURM);
    EXPECT_EQ(env.rank, 9);
    EXPECT_EQ(env.world_size, 16);
    EXPECT_EQ(env.local_world_size, 16);  // "8(x2)" is not a plain number: falls back to the world size

    ASSERT_EQ(parse(ctx.get(), {"PMI_RANK=1", "PMI_SIZE=2"}, &env), CULORA_OK);
    EXPECT_EQ(env.launcher, CULORA_LAUNCHER_PMI);

    // torchrun wins when several launchers' variables are present (torchrun inside an allocation)
    ASSERT_EQ(parse(ctx.get(), {"SLURM_PROCID=0", "SLURM_NTASKS=1", "RANK=1", "WORLD_SIZE=2"}, &env), CULORA_OK);
    EXPECT_EQ(env.launcher, CULORA_LAUNCHER_TORCHRUN);
    EXPECT_EQ(env.world_size, 2);
}

TEST(DistEnv, BadValuesAreNamed)
{
    auto ctx = culora_test::make_ctx(CULORA_BACKEND_CPU);
    culora_dist_env env;
    EXPECT_EQ(parse(ctx.get(), {"RANK=4", "WORLD_SIZE=4"}, &env), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(std::string(culora_context_last_error(ctx.get())).find("RANK=\"4\""), std::string::npos);
    EXPECT_EQ(parse(ctx.get(), {"RANK=0", "WORLD_SIZE=two"}, &env), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(std::string(culora_context_last_error(ctx.get())).find("WORLD_SIZE"), std::string::npos);
    EXPECT_EQ(parse(ctx.get(), {"MASTER_PORT=70000"}, &env), CULORA_ERR_INVALID_ARG);
    EXPECT_NE(std::string(culora_context_last_error(ctx.get())).find("MASTER_PORT"), std::string::npos);
}

TEST(DistNone, OneProcessCollectivesLeaveDataAlone)
{
    auto ctx = culora_test::make_ctx(CULORA_BACKEND_CPU);
    culora_dist_params p = CULORA_DIST_PARAMS_INIT;
    culora_dist *d = nullptr;
    ASSERT_EQ(culora_dist_create(ctx.get(), &p, &d), CULORA_OK) << culora_context_last_error(ctx.get());
    EXPECT_STREQ(culora_dist_kind_name(d), "none");
    EXPECT_EQ(culora_dist_world_size(d), 1);
    float buf[3] = {1, 2, 3};
    EXPECT_EQ(culora_dist_allreduce_mean_f32(d, buf, 3, nullptr), CULORA_OK);
    EXPECT_EQ(buf[2], 3.0f);
    EXPECT_EQ(culora_dist_check_same(d, 7, "x"), CULORA_OK);
    EXPECT_EQ(culora_dist_barrier(d), CULORA_OK);
    EXPECT_EQ(culora_dist_broadcast(d, buf, 4, 1, nullptr), CULORA_ERR_INVALID_ARG);  // root 1 of 1
    culora_dist_destroy(d);
    p.env.world_size = 2;
    p.kind = CULORA_DIST_NONE;
    EXPECT_EQ(culora_dist_create(ctx.get(), &p, &d), CULORA_ERR_INVALID_ARG);
    p.kind = CULORA_DIST_NCCL;
    EXPECT_EQ(culora_dist_create(ctx.get(), &p, &d), CULORA_ERR_UNSUPPORTED);  // NCCL needs a CUDA context
    EXPECT_NE(std::string(culora_context_last_error(ctx.get())).find("CUDA"), std::string::npos);
}
