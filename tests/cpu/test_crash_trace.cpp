// test_crash_trace.cpp — the test harness's fatal-signal handler (tests/common/crash_trace.cpp)
// prints the signal and a backtrace naming the crashing function, and the process still dies of
// that signal (so ctest reports a crash, not a pass).
#include <gtest/gtest.h>

#include <csignal>

// Not static and not inlined: the backtrace should name it (the binary exports its symbols).
extern "C" __attribute__((noinline)) void culora_test_crash_here(volatile int *p) { *p = 1; }

TEST(CrashTrace, SegfaultPrintsSignalAndBacktraceThenDies)
{
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(culora_test_crash_here(nullptr), ::testing::KilledBySignal(SIGSEGV),
                "fatal signal SIGSEGV at address 0x0; backtrace.*\n(.*\n)*.*culora_test_crash_here");
}

TEST(CrashTrace, AbortIsReportedToo)
{
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(std::abort(), ::testing::KilledBySignal(SIGABRT), "fatal signal SIGABRT");
}
