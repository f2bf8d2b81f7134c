// test_info_cli.cpp — `culora info` on the fixtures: what it prints, and exit status 1 with the
// library's message on a defect.
#include "io_test_util.h"
#include "test_util.h"

using namespace culora_io_test;
using culora_test::CommandRun;
using culora_test::run_command;

namespace {

// Runs the culora program with args (stdout and stderr together).
CommandRun run_info(const std::string &args)
{
    return run_command(std::string(CULORA_CLI_PATH) + " info " + args + " 2>&1");
}

TEST(InfoCli, SafetensorsFileListsTensorsAndMetadata)
{
    CommandRun r = run_info(fixture("safetensors/dtypes.safetensors"));
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("15 tensors"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("format: pt"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("bf16                    BF16  [3, 5]"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("scalar                  F32   []"), std::string::npos) << r.out;
}

TEST(InfoCli, ModelDirectoryPrintsConfigAndChecksWeights)
{
    CommandRun r = run_info(fixture("llama_sharded"));
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("LlamaForCausalLM"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("heads / kv heads         4 / 2 (head_dim 4)"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("4 files"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("the weights match config.json (21 parameter tensors)"), std::string::npos) << r.out;
}

TEST(InfoCli, AdapterDirectoryPrintsConfigAndModules)
{
    CommandRun r = run_info(fixture("adapter_gpt2"));
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("PEFT LoRA adapter"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("LoRA modules: 6"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("transformer.h.0.attn.c_attn  r=4 alpha=8 scaling=2  A [4, 16]  B [48, 4]"),
              std::string::npos) << r.out;
}

TEST(InfoCli, DefectsExitWithTheMessage)
{
    TempDir dir;
    write_bytes(dir / "bad.safetensors", st_bytes(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                                                  std::string(8, '\0')));
    CommandRun r = run_info(dir / "bad.safetensors");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("bad.safetensors: tensor 't': data_offsets [0, 8] hold 8 bytes"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("CULORA_ERR_FORMAT"), std::string::npos) << r.out;
    r = run_info(fixture("configs/unsupported_arch.json"));
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("unsupported architecture"), std::string::npos) << r.out;
    r = run_info(dir / "missing");
    EXPECT_EQ(r.status, 1) << r.out;
    r = run_info("");
    EXPECT_EQ(r.status, 2) << r.out;
}

} // namespace
