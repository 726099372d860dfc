/* fim_sigdfl: restores every signal to its default disposition, unblocks them all, then
 * runs the given program. The runtime starts bubblewrap with SIGINT ignored, so that a
 * Ctrl-C on the terminal does not kill the sandbox's supervisors; the guest program is
 * started through this so that it gets Ctrl-C as usual. (A shell cannot do this: signals
 * ignored on entry to a non-interactive shell cannot be reset.)
 *
 * `--die-with-parent PID`, for the launcher's helpers (mkfs.erofs must not work on after the
 * launcher was killed): the program is killed when PID, the process that started this one,
 * ends, and nothing runs (exit 127) when PID has already ended. Its signal dispositions are
 * then left as inherited (a `nohup`'d commit keeps SIGHUP ignored). The program keeps this
 * process's PID, so the launcher can follow it in /proc. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
  int first = 1, bound = 0;
  if (argc > 2 && strcmp(argv[1], "--die-with-parent") == 0) {
    char *end;
    long parent = strtol(argv[2], &end, 10);
    if (*argv[2] == 0 || *end != 0 || parent <= 0) {
      fprintf(stderr, "fim_sigdfl: --die-with-parent takes a process id, not '%s'\n", argv[2]);
      return 127;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != (pid_t)parent) return 127; /* it ended before the signal was set */
    first = 3, bound = 1;
  }
  if (argc <= first) {
    fprintf(stderr, "usage: fim_sigdfl [--die-with-parent PID] <program> [args...]\n");
    return 127;
  }
  if (!bound) {
    for (int sig = 1; sig < NSIG; sig++) {
      if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
  }
  execvp(argv[first], argv + first);
  fprintf(stderr, "fim_sigdfl: %s: %s\n", argv[first], strerror(errno));
  return errno == ENOENT ? 127 : 126;
}
