/* cluster up and cluster down: process supervision of this host's nodes. `up` starts the configured
 * nodes whose address is on this host as background aquiferd processes (own session, output to
 * RUN_DIR/NAME.log, pid in RUN_DIR/NAME.pid) and waits until every node sees every other up; `down`
 * stops the ones a pid file names, gently first. A pid file is trusted only while its process is a
 * live aquiferd for that node, so a stale file never gets an unrelated process signalled. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define UP_TIMEOUT_MS   30000
#define DOWN_TIMEOUT_MS 15000
#define KILL_WAIT_MS    5000

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* True while pid is a running (not zombie) aquiferd serving node `name`. */
static bool is_our_node(pid_t pid, const char *name) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    char *rp = strrchr(buf, ')');
    if (!rp || rp[1] != ' ' || rp[2] == 'Z' || rp[2] == 'X')
        return false;
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    const char *argv0 = buf, *slash = strrchr(argv0, '/');
    if (strcmp(slash ? slash + 1 : argv0, "aquiferd") != 0)
        return false;
    /* Its arguments include "-n NAME". */
    for (ssize_t off = (ssize_t)strlen(buf) + 1; off < n;) {
        const char *arg = buf + off;
        size_t al = strlen(arg);
        if (strcmp(arg, "-n") == 0 && off + (ssize_t)al + 1 < n)
            return strcmp(arg + al + 1, name) == 0;
        off += (ssize_t)al + 1;
    }
    return false;
}

static pid_t read_pid(const char *path) {
    char buf[32];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *end;
    long v = strtol(buf, &end, 10);
    if (end == buf || v <= 1 || v > 4194304)
        return 0;
    return (pid_t)v;
}

static int write_file_atomic(const char *path, const char *text) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t len = strlen(text);
    ssize_t w = write(fd, text, len);
    int err = w == (ssize_t)len ? 0 : (w < 0 ? -errno : -EIO);
    if (close(fd) != 0 && !err)
        err = -errno;
    if (!err && rename(tmp, path) != 0)
        err = -errno;
    if (err)
        unlink(tmp);
    return err;
}

static int mkdir_p(const char *dir) {
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return -ENAMETOOLONG;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* aquiferd next to this program, else on $PATH. */
static char *find_aquiferd(void) {
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        char *p;
        if (asprintf(&p, "%s/aquiferd", dirname(self)) >= 0) {
            if (access(p, X_OK) == 0)
                return p;
            free(p);
        }
    }
    const char *path = getenv("PATH");
    if (!path)
        return NULL;
    char *copy = strdup(path), *save = NULL;
    for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save)) {
        char *p;
        if (asprintf(&p, "%s/aquiferd", *d ? d : ".") < 0)
            break;
        if (access(p, X_OK) == 0) {
            free(copy);
            return p;
        }
        free(p);
    }
    free(copy);
    return NULL;
}

static void node_file(const cli *c, size_t i, const char *ext, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s.%s", c->conf->run_dir, c->conf->nodes[i].name, ext);
}

/* Starts aquiferd for node i in its own session; returns its pid or a negative error. */
static pid_t spawn_node(const cli *c, size_t i, const char *exe, const char *conf_path) {
    char log[4200];
    node_file(c, i, "log", log, sizeof log);
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return -errno;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(pfd[0]);
        close(pfd[1]);
        return -e;
    }
    if (pid == 0) {
        close(pfd[0]);
        setsid();
        int lf = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int nf = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (lf >= 0 && nf >= 0 && dup2(nf, 0) >= 0 && dup2(lf, 1) >= 0 && dup2(lf, 2) >= 0) {
            signal(SIGPIPE, SIG_DFL);
            char *const argv[] = {(char *)"aquiferd", (char *)"-c",           (char *)conf_path,
                                  (char *)"-n",       c->conf->nodes[i].name, NULL};
            execv(exe, argv);
        }
        int e = errno;
        ssize_t w = write(pfd[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    close(pfd[1]);
    int e = 0;
    ssize_t r;
    while ((r = read(pfd[0], &e, sizeof e)) < 0 && errno == EINTR)
        ;
    close(pfd[0]);
    if (r == (ssize_t)sizeof e) {
        waitpid(pid, NULL, 0);
        return -e;
    }
    return pid;
}

static void print_log_tail(const char *path, int lines) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "  (cannot read %s: %s)\n", path, strerror(errno));
        return;
    }
    char buf[8192];
    off_t end = lseek(fd, 0, SEEK_END);
    off_t start = end > (off_t)sizeof buf - 1 ? end - (off_t)sizeof buf + 1 : 0;
    ssize_t n = pread(fd, buf, sizeof buf - 1, start);
    close(fd);
    if (n <= 0) {
        fprintf(stderr, "  (%s is empty)\n", path);
        return;
    }
    buf[n] = 0;
    char *p = buf + n;
    if (p > buf && p[-1] == '\n')
        p--;
    int seen = 0;
    while (p > buf && seen < lines) {
        p--;
        if (*p == '\n')
            seen++;
    }
    if (*p == '\n')
        p++;
    fprintf(stderr, "--- last lines of %s:\n", path);
    for (char *line = p; *line;) {
        char *nl = strchr(line, '\n');
        size_t l = nl ? (size_t)(nl - line) : strlen(line);
        fprintf(stderr, "  %.*s\n", (int)l, line);
        if (!nl)
            break;
        line = nl + 1;
    }
}

/* Every node answered STATUS and reports every peer up. Otherwise why names the first node that
 * did not answer (the likelier culprit) or else the first link not up. */
static bool formed(cli *c, const bool *local, char *why, size_t cap) {
    size_t nn = c->conf->nnodes;
    for (size_t i = 0; i < nn; i++) {
        size_t len = 0;
        const char *failure;
        const uint8_t *rep = cli_probe_reply(c, i, &len, &failure);
        aq_node_status_node sn;
        aq_rd r;
        if (!rep || aq_node_status_rep_begin(&r, rep, len, &sn) != 0) {
            snprintf(why, cap, "%s (%s) is not answering: %s%s", c->conf->nodes[i].name,
                     c->conf->nodes[i].address, failure ? failure : "malformed STATUS reply",
                     local[i] ? "" : " (it is not on this host: start it where it is)");
            return false;
        }
    }
    for (size_t i = 0; i < nn; i++) {
        size_t len = 0;
        const char *failure;
        const uint8_t *rep = cli_probe_reply(c, i, &len, &failure);
        aq_node_status_node sn;
        aq_rd r;
        if (!rep || aq_node_status_rep_begin(&r, rep, len, &sn) != 0)
            return false;
        for (uint32_t j = 0; j < sn.npeers; j++) {
            aq_node_status_peer sp;
            if (aq_node_status_rep_next(&r, &sp) != 0) {
                snprintf(why, cap, "%s sent a malformed STATUS reply", c->conf->nodes[i].name);
                return false;
            }
            if (sp.state != AQ_MEMBER_UP) {
                snprintf(why, cap, "%s sees %s %s", c->conf->nodes[i].name, sp.name,
                         aq_node_member_state_name(sp.state));
                return false;
            }
        }
    }
    return true;
}

/* Which configured nodes live on this host; on failure says why and returns the exit code. */
static int local_nodes(cli *c, bool *local, size_t *nlocal) {
    int err = aq_node_config_local_nodes(c->conf, local, nlocal);
    return err ? cli_fail(c, CLI_ERROR, "cannot list this host's addresses: %s", aq_strerror(err))
               : 0;
}

int cli_cmd_up(cli *c) {
    size_t nn = c->conf->nnodes, nlocal = 0;
    bool *local = calloc(nn, sizeof *local);
    pid_t *started = calloc(nn, sizeof *started);
    char *exe = NULL, *conf_path = NULL;
    int rc = 0;
    if (!local || !started) {
        rc = cli_fail(c, AQ_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = local_nodes(c, local, &nlocal)) != 0)
        goto out;
    if (nlocal == 0) {
        rc = cli_fail(c, CLI_ERROR, "no node of %s has its address on this host", c->conf->origin);
        goto out;
    }
    int err = mkdir_p(c->conf->run_dir);
    if (err != 0) {
        rc = cli_fail(c, CLI_ERROR, "cannot create run_dir %s: %s", c->conf->run_dir,
                      strerror(-err));
        goto out;
    }
    if (c->conf_path) {
        conf_path = strdup(c->conf_path);
    } else if (asprintf(&conf_path, "%s/cluster.conf", c->conf->run_dir) >= 0) {
        /* The nodes need a file: write the built-in default where `down` and the logs live. */
        if ((err = write_file_atomic(conf_path, aq_node_config_default_text())) != 0) {
            rc = cli_fail(c, CLI_ERROR, "cannot write %s: %s", conf_path, strerror(-err));
            goto out;
        }
    } else {
        conf_path = NULL;
    }
    if (!conf_path) {
        rc = cli_fail(c, AQ_ENOMEM, "out of memory");
        goto out;
    }
    exe = find_aquiferd();
    if (!exe) {
        rc = cli_fail(c, CLI_ERROR, "cannot find aquiferd next to aquifer or on $PATH");
        goto out;
    }
    for (size_t i = 0; i < nn; i++) {
        if (!local[i])
            continue;
        const char *name = c->conf->nodes[i].name;
        char pidf[4200], logf[4200];
        node_file(c, i, "pid", pidf, sizeof pidf);
        node_file(c, i, "log", logf, sizeof logf);
        pid_t old = read_pid(pidf);
        if (old && is_our_node(old, name)) {
            printf("%s is already running (pid %d)\n", name, (int)old);
            continue;
        }
        /* Like RUN_DIR, a data_dir in a directory that does not exist yet is created here: the
         * store itself creates only its last component. */
        const char *dd = c->conf->nodes[i].data_dir;
        if (dd && (err = mkdir_p(dd)) != 0) {
            rc = cli_fail(c, CLI_ERROR, "cannot create %s's data_dir %s: %s", name, dd,
                          strerror(-err));
            goto out;
        }
        pid_t pid = spawn_node(c, i, exe, conf_path);
        if (pid < 0) {
            rc = cli_fail(c, CLI_ERROR, "cannot start %s (%s): %s", name, exe, strerror(-pid));
            goto out;
        }
        char num[32];
        snprintf(num, sizeof num, "%d\n", (int)pid);
        if ((err = write_file_atomic(pidf, num)) != 0) {
            rc = cli_fail(c, CLI_ERROR, "started %s (pid %d) but cannot write %s: %s", name,
                          (int)pid, pidf, strerror(-err));
            goto out;
        }
        started[i] = pid;
        printf("started %s (pid %d), log %s\n", name, (int)pid, logf);
    }
    fflush(stdout);
    if ((rc = cli_open(c)) != 0)
        goto out;
    uint64_t deadline = now_ms() + UP_TIMEOUT_MS;
    char why[512] = "no answer yet";
    for (;;) {
        for (size_t i = 0; i < nn; i++) {
            int st;
            if (!started[i] || waitpid(started[i], &st, WNOHANG) != started[i])
                continue;
            char logf[4200], how[64];
            node_file(c, i, "log", logf, sizeof logf);
            if (WIFEXITED(st))
                snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(st));
            else
                snprintf(how, sizeof how, "was killed by signal %d (%s)", WTERMSIG(st),
                         strsignal(WTERMSIG(st)));
            rc = cli_fail(c, CLI_ERROR, "%s (%s) %s; see its log %s", c->conf->nodes[i].name,
                          c->conf->nodes[i].address, how, logf);
            print_log_tail(logf, 10);
            goto out;
        }
        cli_probe(c, 1000);
        if (formed(c, local, why, sizeof why))
            break;
        if (now_ms() >= deadline) {
            cli_print_status(c, stdout);
            rc = cli_fail(c, CLI_UNREACH, "the cluster did not form within %d s: %s",
                          UP_TIMEOUT_MS / 1000, why);
            for (size_t i = 0; i < nn; i++) {
                if (local[i] && !c->live[i]) {
                    char logf[4200];
                    node_file(c, i, "log", logf, sizeof logf);
                    print_log_tail(logf, 10);
                }
            }
            goto out;
        }
        sleep_ms(200);
    }
    cli_print_status(c, stdout);
out:
    free(local);
    free(started);
    free(exe);
    free(conf_path);
    return rc;
}

int cli_cmd_down(cli *c) {
    size_t nn = c->conf->nnodes, nlocal = 0;
    bool *local = calloc(nn, sizeof *local);
    pid_t *pids = calloc(nn, sizeof *pids);
    int rc = 0;
    if (!local || !pids) {
        rc = cli_fail(c, AQ_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = local_nodes(c, local, &nlocal)) != 0)
        goto out;
    size_t waiting = 0;
    for (size_t i = 0; i < nn; i++) {
        if (!local[i])
            continue;
        const char *name = c->conf->nodes[i].name;
        char pidf[4200];
        node_file(c, i, "pid", pidf, sizeof pidf);
        pid_t pid = read_pid(pidf);
        if (!pid) {
            printf("%s is not running (no pid file)\n", name);
            continue;
        }
        if (!is_our_node(pid, name)) {
            printf("%s is not running (stale pid file %s removed)\n", name, pidf);
            unlink(pidf);
            continue;
        }
        if (kill(pid, SIGTERM) != 0) {
            rc = cli_fail(c, CLI_ERROR, "cannot signal %s (pid %d): %s", name, (int)pid,
                          strerror(errno));
            continue;
        }
        pids[i] = pid;
        waiting++;
    }
    uint64_t deadline = now_ms() + DOWN_TIMEOUT_MS;
    bool killed = false;
    while (waiting) {
        for (size_t i = 0; i < nn; i++) {
            if (!pids[i] || is_our_node(pids[i], c->conf->nodes[i].name))
                continue;
            char pidf[4200];
            node_file(c, i, "pid", pidf, sizeof pidf);
            unlink(pidf);
            printf("stopped %s (pid %d)\n", c->conf->nodes[i].name, (int)pids[i]);
            pids[i] = 0;
            waiting--;
        }
        if (!waiting)
            break;
        if (now_ms() >= deadline && !killed) {
            for (size_t i = 0; i < nn; i++) {
                if (!pids[i])
                    continue;
                fprintf(stderr,
                        "aquifer: cluster down: %s (pid %d) did not stop within %d s after "
                        "SIGTERM: sending SIGKILL\n",
                        c->conf->nodes[i].name, (int)pids[i], DOWN_TIMEOUT_MS / 1000);
                kill(pids[i], SIGKILL);
            }
            killed = true;
            deadline = now_ms() + KILL_WAIT_MS;
        } else if (now_ms() >= deadline) {
            /* SIGKILL cannot be refused; a process still there is stuck in the kernel. */
            for (size_t i = 0; i < nn; i++)
                if (pids[i])
                    rc = cli_fail(c, CLI_ERROR, "%s (pid %d) is still there %d s after SIGKILL",
                                  c->conf->nodes[i].name, (int)pids[i], KILL_WAIT_MS / 1000);
            break;
        }
        sleep_ms(50);
    }
    fflush(stdout);
out:
    free(local);
    free(pids);
    return rc;
}
