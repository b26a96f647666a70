/* The Linux side of the user-mode benchmarks (scripts/bench): run in the
 * Linux PV domU's initramfs, against programs/src/bin/ubench.rs in the same
 * rig run. A null system call (getpid through syscall(2), so no libc cache
 * can answer it) and fork + exec + wait of this same static binary, timed
 * with CLOCK_MONOTONIC. Prints one line the rig reads. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "exit") == 0)
        return 0;
    const int calls = 2000, spawns = 20;
    long long t0 = now_ns();
    for (int i = 0; i < calls; i++)
        syscall(SYS_getpid);
    long long t1 = now_ns();
    for (int i = 0; i < spawns; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            char *args[] = {argv[0], "exit", NULL};
            execv(argv[0], args);
            _exit(127);
        }
        int status;
        waitpid(pid, &status, 0);
    }
    long long t2 = now_ns();
    printf("lbench: null_syscall_ns=%lld spawn_exit_us=%lld\n", (t1 - t0) / calls,
           (t2 - t1) / spawns / 1000);
    fflush(stdout);
    return 0;
}
