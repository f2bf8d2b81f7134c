// test_dist_tcp.cpp — the TCP communicator across real processes: dist_probe is started N times
// with torchrun-style variables. Correct collectives with 2 and 4 ranks; a killed rank, a hung
// rank and ranks out of step each end every surviving rank with an error naming the problem,
// within the timeout.
#include "test_util.h"

#include <arpa/inet.h>
#include <chrono>
#include <fstream>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace {

int free_port()
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    bind(fd, (sockaddr *)&a, sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, (sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

struct Rank {
    pid_t pid;
    std::string out;  // file with the rank's stdout + stderr
    int status = -1;
    double end_s = 0;  // seconds after the start when it exited
};

// Starts `world` probes in `mode`, waits for all (killing them after `limit_s`), returns per-rank results.
std::vector<Rank> run_probes(int world, const std::string &mode, double timeout_s, double limit_s, double *elapsed)
{
    const int port = free_port();
    std::vector<Rank> ranks((size_t)world);
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < world; r++) {
        ranks[(size_t)r].out = ::testing::TempDir() + "dist_probe_" + mode + "_" + std::to_string(r) + ".log";
        pid_t pid = fork();
        if (pid == 0) {
            FILE *f = freopen(ranks[(size_t)r].out.c_str(), "w", stdout);
            (void)f;
            dup2(fileno(stdout), 2);
            setenv("RANK", std::to_string(r).c_str(), 1);
            setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
            setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
            setenv("MASTER_ADDR", "127.0.0.1", 1);
            setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
            std::string t = std::to_string(timeout_s);
            execl(CULORA_DIST_PROBE, CULORA_DIST_PROBE, mode.c_str(), t.c_str(), (char *)nullptr);
            _exit(127);
        }
        ranks[(size_t)r].pid = pid;
    }
    int left = world;
    while (left > 0) {
        for (auto &rk : ranks) {
            if (rk.status != -1) continue;
            int st = 0;
            if (waitpid(rk.pid, &st, WNOHANG) == rk.pid) {
                rk.status = st;
                rk.end_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                left--;
            }
        }
        double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (el > limit_s) {
            for (auto &rk : ranks)
                if (rk.status == -1) kill(rk.pid, SIGKILL);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    *elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return ranks;
}

std::string slurp(const std::string &path)
{
    std::ifstream f(path);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST(DistTcp, CollectivesGiveKnownAnswersOn2And4Ranks)
{
    for (int world : {2, 4}) {
        double el = 0;
        auto ranks = run_probes(world, "ok", 30, 60, &el);
        for (int r = 0; r < world; r++) {
            const Rank &rk = ranks[(size_t)r];
            std::string out = slurp(rk.out);
            EXPECT_TRUE(WIFEXITED(rk.status) && WEXITSTATUS(rk.status) == 0) << "world " << world << " rank " << r << ": " << out;
            EXPECT_NE(out.find("ok (tcp communicator, world " + std::to_string(world)), std::string::npos) << out;
        }
    }
}

TEST(DistTcp, AKilledRankEndsEveryRankWithItsName)
{
    double el = 0;
    auto ranks = run_probes(3, "die", 20, 60, &el);
    EXPECT_TRUE(WIFSIGNALED(ranks[1].status));
    for (int r : {0, 2}) {
        std::string out = slurp(ranks[(size_t)r].out);
        EXPECT_TRUE(WIFEXITED(ranks[(size_t)r].status) && WEXITSTATUS(ranks[(size_t)r].status) == 3) << out;
        EXPECT_NE(out.find("CULORA_ERR_PEER"), std::string::npos) << out;
    }
    EXPECT_NE(slurp(ranks[0].out).find("rank 1"), std::string::npos);  // rank 0 saw rank 1 go
    EXPECT_LT(el, 15.0) << "a dead peer is noticed at once, not after the 20 s timeout";
}

TEST(DistTcp, AHungRankEndsTheJobWithinTheTimeout)
{
    double el = 0;
    auto ranks = run_probes(3, "hang", 2, 60, &el);
    std::string out0 = slurp(ranks[0].out), out2 = slurp(ranks[2].out);
    EXPECT_NE(out0.find("CULORA_ERR_TIMEOUT"), std::string::npos) << out0;
    EXPECT_NE(out0.find("rank 1"), std::string::npos) << out0;
    EXPECT_EQ(WEXITSTATUS(ranks[2].status), 3) << out2;  // rank 2 hears of it from rank 0
    EXPECT_EQ(WEXITSTATUS(ranks[0].status), 3);
    // rank 1 sleeps 2·timeout + 2 = 6 s; the others end after the 2 s timeout (+ start-up slack)
    std::cout << "  ranks 0 and 2 ended after " << ranks[0].end_s << " and " << ranks[2].end_s
              << " s; the hung rank 1 after " << ranks[1].end_s << " s\n";
    EXPECT_LT(ranks[0].end_s, 5.0);
    EXPECT_LT(ranks[2].end_s, 5.0);
}

TEST(DistTcp, RanksOutOfStepAreReported)
{
    double el = 0;
    auto ranks = run_probes(2, "mismatch", 10, 60, &el);
    std::string all = slurp(ranks[0].out) + slurp(ranks[1].out);
    EXPECT_NE(all.find("CULORA_ERR_MISMATCH"), std::string::npos) << all;
    EXPECT_NE(all.find("out of step"), std::string::npos) << all;
}
