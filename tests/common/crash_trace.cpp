// crash_trace.cpp — linked into every gtest binary: on a fatal signal (SIGSEGV, SIGBUS, SIGILL,
// SIGFPE, SIGABRT) writes the signal, the faulting address and a backtrace to stderr, then dies of
// the same signal. Why: a host crash inside a GPU test on the lent machine (ctest under CMake 4.4
// reports it only as "cmake_language EXIT ... Segmentation fault") leaves nothing to read, and
// GPU time to rerun it under a debugger is minutes a month. Frames in shared libraries print as
// lib(+offset) (addr2line -e lib offset); the test binaries export their symbols (ENABLE_EXPORTS).
// Test-harness code only: the library never installs handlers.
#include <cstdint>
#include <execinfo.h>
#include <initializer_list>
#include <signal.h>
#include <string.h>
#include <unistd.h>

namespace {

void put(const char *s) { (void)!write(STDERR_FILENO, s, strlen(s)); }

void put_hex(uintptr_t v)
{
    char buf[2 + 2 * sizeof v + 1];
    int n = 0;
    buf[n++] = '0';
    buf[n++] = 'x';
    bool started = false;
    for (int shift = 8 * (int)sizeof v - 4; shift >= 0; shift -= 4) {
        const unsigned d = (unsigned)(v >> shift) & 0xF;
        if (d == 0 && !started && shift > 0) continue;
        started = true;
        buf[n++] = "0123456789abcdef"[d];
    }
    buf[n] = '\0';
    put(buf);
}

// Async-signal-safe apart from the first backtrace() call, which may load libgcc_s: it is made
// once at start-up (below) so the handler only walks the stack.
void on_fatal(int sig, siginfo_t *info, void *)
{
    put("\n*** culora test: fatal signal ");
    put(sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS" : sig == SIGILL ? "SIGILL" : sig == SIGFPE ? "SIGFPE" : "SIGABRT");
    put(" at address ");
    put_hex((uintptr_t)(info ? info->si_addr : nullptr));
    put("; backtrace (innermost first):\n");
    void *frames[64];
    const int n = backtrace(frames, 64);
    backtrace_symbols_fd(frames, n, STDERR_FILENO);
    put("*** end of backtrace\n");
    signal(sig, SIG_DFL); // die of the same signal: ctest and the shell see what happened
    raise(sig);
}

struct Install {
    Install()
    {
        void *warm[1];
        (void)backtrace(warm, 1);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fatal;
        sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) sigaction(sig, &sa, nullptr);
    }
};
const Install install_at_start_up;

}  // namespace
