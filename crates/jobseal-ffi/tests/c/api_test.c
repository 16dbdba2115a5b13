/*
 * The jobseal C API, exercised from C: misuse (NULL pointers, bad
 * arguments, an unusable configuration), every test vector (the same
 * decision, reason code, subject, FQANs, job id and digest as the Rust
 * API), one verifier shared by threads, admission (replay, audit, fail
 * closed), and ownership (run under valgrind by tests/c_api.rs).
 *
 * Run by tests/c_api.rs:
 *   api_test VECTORS_TSV CA_DIR VOMS_DIR POLICY AT STATE_DIR FRESH_CA FRESH_TSV CHDIR_ROOT
 * VECTORS_TSV: one vector a line, tab-separated: name, expected code,
 *   bundle, executable, job directory, Rust code, Rust subject, Rust job
 *   id, Rust digest, Rust FQANs (joined by '|'), Rust credential-only code,
 *   then the arguments ("-" for an absent value).
 * FRESH_CA, FRESH_TSV: a CA directory and three bundles it trusts, sealed
 *   now (for admission), a line each: bundle,
 *   executable, job directory, arguments.
 * CHDIR_ROOT: host/ (certs/ = FRESH_CA, vomsdir/, policy.toml) and job/
 *   (a rogue certs/, another CA): a host builds its verifier with relative
 *   paths in host/, then moves into job/ before its first admission.
 * If JOBSEAL_DECISIONS_OUT is set, writes "NAME<TAB>CODE" for every vector,
 * sorted by name, to that file.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobseal.h"

static int checks = 0;
static int failures = 0;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        checks++;                                                             \
        if (!(cond)) {                                                        \
            failures++;                                                       \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);              \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
        }                                                                     \
    } while (0)

/* Two C strings equal, NULL only to NULL; "-" in a TSV field means NULL. */
static int same(const char *got, const char *want) {
    if (want != NULL && strcmp(want, "-") == 0)
        want = NULL;
    if (got == NULL || want == NULL)
        return got == want;
    return strcmp(got, want) == 0;
}

static const char *show(const char *s) { return s ? s : "(null)"; }

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf != NULL && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

/* ---- the vectors ------------------------------------------------------ */

struct vector {
    char *line; /* owns the fields */
    char *name, *expected, *bundle_path, *executable, *job_dir;
    char *rust_code, *rust_subject, *rust_job_id, *rust_digest, *rust_fqans;
    char *rust_issued_by_end_entity;
    char *rust_credential_code;
    char **argv;
    size_t argc;
    unsigned char *bundle;
    size_t bundle_len;
    char got_code[64]; /* the C API's code; empty if none */
};

static struct vector *vectors = NULL;
static size_t nvectors = 0;

static int split(char *line, char **fields, int max) {
    int n = 0;
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        char *tab = strchr(p, '\t');
        if (tab == NULL)
            break;
        *tab = '\0';
        p = tab + 1;
    }
    return n;
}

static void load_vectors(const char *path) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(2);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[len - 1] = '\0';
        vectors = realloc(vectors, (nvectors + 1) * sizeof *vectors);
        struct vector *v = &vectors[nvectors++];
        memset(v, 0, sizeof *v);
        v->line = strdup(line);
        char *fields[64];
        int n = split(v->line, fields, 64);
        if (n < 12) {
            fprintf(stderr, "bad vector line: %s\n", line);
            exit(2);
        }
        v->name = fields[0];
        v->expected = fields[1];
        v->bundle_path = fields[2];
        v->executable = fields[3];
        v->job_dir = fields[4];
        v->rust_code = fields[5];
        v->rust_subject = fields[6];
        v->rust_job_id = fields[7];
        v->rust_digest = fields[8];
        v->rust_fqans = fields[9];
        v->rust_credential_code = fields[10];
        v->rust_issued_by_end_entity = fields[11];
        v->argc = (size_t)(n - 12);
        v->argv = calloc(v->argc + 1, sizeof *v->argv);
        for (size_t i = 0; i < v->argc; i++)
            v->argv[i] = fields[12 + i];
        v->bundle = (unsigned char *)read_file(v->bundle_path, &v->bundle_len);
        if (v->bundle == NULL) {
            fprintf(stderr, "cannot read %s\n", v->bundle_path);
            exit(2);
        }
    }
    free(line);
    fclose(f);
}

static void free_vectors(void) {
    for (size_t i = 0; i < nvectors; i++) {
        free(vectors[i].line);
        free(vectors[i].argv);
        free(vectors[i].bundle);
    }
    free(vectors);
}

/* The verified FQANs of a decision joined by '|', or "-" for none. */
static void fqans_of(const jobseal_decision *d, char *out, size_t cap) {
    size_t n = jobseal_decision_fqan_count(d);
    out[0] = '\0';
    if (n == 0) {
        snprintf(out, cap, "-");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *f = jobseal_decision_fqan(d, i);
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s%s", i ? "|" : "", show(f));
    }
}

/* ---- misuse ----------------------------------------------------------- */

static void test_misuse(const char *ca, const char *voms, const char *policy,
                        const struct vector *v) {
    jobseal_verifier *vf = (jobseal_verifier *)&checks; /* must be cleared */
    char *err = (char *)"not cleared";

    CHECK(jobseal_verifier_new(ca, voms, policy, NULL, NULL, &err) ==
              JOBSEAL_ERR_NULL_POINTER,
          "verifier_new without out");
    CHECK(err == NULL, "error string set on a NULL-pointer status");

    CHECK(jobseal_verifier_new("/nonexistent/jobseal/ca", voms, policy, NULL,
                               &vf, &err) == JOBSEAL_ERR_CONFIG,
          "a missing CA directory");
    CHECK(vf == NULL, "out not cleared on failure");
    CHECK(err != NULL && strncmp(err, "config.invalid: ", 16) == 0,
          "error string of a missing CA directory: %s", show(err));
    /* The error string is the caller's, from malloc: it may be changed
     * (truncated), then freed with jobseal_string_free or free(). */
    if (err != NULL)
        err[6] = '\0';
    jobseal_string_free(err);

    err = NULL;
    CHECK(jobseal_verifier_new("", voms, policy, NULL, &vf, &err) ==
              JOBSEAL_ERR_CONFIG,
          "an empty CA directory path");
    CHECK(err != NULL && strncmp(err, "config.invalid: ", 16) == 0,
          "error string of an empty path: %s", show(err));
    free(err);

    err = NULL;
    CHECK(jobseal_verifier_new(ca, voms, "/nonexistent/jobseal/policy.toml",
                               NULL, &vf, &err) == JOBSEAL_ERR_CONFIG,
          "a missing policy file");
    CHECK(err != NULL && strncmp(err, "policy.invalid: ", 16) == 0,
          "error string of a missing policy: %s", show(err));
    jobseal_string_free(err);
    CHECK(jobseal_verifier_new("/nonexistent/jobseal/ca", voms, policy, NULL,
                               &vf, NULL) == JOBSEAL_ERR_CONFIG,
          "a missing CA directory, no error string wanted");

    CHECK(jobseal_verifier_new(ca, voms, policy, NULL, &vf, &err) == JOBSEAL_OK,
          "verifier_new: %s", show(err));
    CHECK(err == NULL, "error string on success");

    const char *args[] = {"--events", NULL};
    jobseal_decision *d = (jobseal_decision *)&checks;
    CHECK(jobseal_check(NULL, v->bundle, v->bundle_len, v->executable, NULL, 0,
                        NULL, 0, &d) == JOBSEAL_ERR_NULL_POINTER,
          "check without verifier");
    CHECK(d == NULL, "out not cleared");
    CHECK(jobseal_check(vf, NULL, 0, v->executable, NULL, 0, NULL, 0, &d) ==
              JOBSEAL_ERR_NULL_POINTER,
          "check without bundle");
    CHECK(jobseal_check(vf, v->bundle, v->bundle_len, NULL, NULL, 0, NULL, 0,
                        &d) == JOBSEAL_ERR_NULL_POINTER,
          "check without executable");
    CHECK(jobseal_check(vf, v->bundle, v->bundle_len, v->executable, NULL, 2,
                        NULL, 0, &d) == JOBSEAL_ERR_NULL_POINTER,
          "check with argc 2 and no argv");
    CHECK(jobseal_check(vf, v->bundle, v->bundle_len, v->executable, args, 2,
                        NULL, 0, &d) == JOBSEAL_ERR_NULL_POINTER,
          "check with a NULL argument");
    CHECK(jobseal_check(vf, v->bundle, v->bundle_len, v->executable, NULL, 0,
                        NULL, 0, NULL) == JOBSEAL_ERR_NULL_POINTER,
          "check without out");
    CHECK(jobseal_check(vf, v->bundle, v->bundle_len, v->executable, NULL, 0,
                        NULL, -2, &d) == JOBSEAL_ERR_INVALID_ARGUMENT,
          "check at -2");
    CHECK(jobseal_check(vf, v->bundle, SIZE_MAX, v->executable, NULL, 0, NULL,
                        0, &d) == JOBSEAL_ERR_INVALID_ARGUMENT,
          "a bundle length above PTRDIFF_MAX");
    CHECK(d == NULL, "out not cleared");
    CHECK(jobseal_check_credential(NULL, v->bundle, v->bundle_len, 0, &d) ==
              JOBSEAL_ERR_NULL_POINTER,
          "check_credential without verifier");
    CHECK(jobseal_check_credential(vf, NULL, 0, 0, &d) ==
              JOBSEAL_ERR_NULL_POINTER,
          "check_credential without bundle");
    CHECK(jobseal_check_credential(vf, v->bundle, v->bundle_len, 0, NULL) ==
              JOBSEAL_ERR_NULL_POINTER,
          "check_credential without out");
    CHECK(jobseal_admit(NULL, v->bundle, v->bundle_len, v->executable, NULL, 0,
                        NULL, &d) == JOBSEAL_ERR_NULL_POINTER,
          "admit without verifier");
    CHECK(jobseal_admit(vf, v->bundle, v->bundle_len, NULL, NULL, 0, NULL,
                        &d) == JOBSEAL_ERR_NULL_POINTER,
          "admit without executable");
    CHECK(jobseal_admit(vf, v->bundle, v->bundle_len, v->executable, NULL, 0,
                        NULL, NULL) == JOBSEAL_ERR_NULL_POINTER,
          "admit without out");

    /* Accessors and free functions take NULL. */
    CHECK(!jobseal_decision_permitted(NULL), "permitted(NULL)");
    CHECK(jobseal_decision_code(NULL) == NULL, "code(NULL)");
    CHECK(jobseal_decision_message(NULL) == NULL, "message(NULL)");
    CHECK(jobseal_decision_subject(NULL) == NULL, "subject(NULL)");
    CHECK(!jobseal_decision_issued_by_end_entity(NULL), "issued_by_end_entity(NULL)");
    CHECK(jobseal_decision_fqan_count(NULL) == 0, "fqan_count(NULL)");
    CHECK(jobseal_decision_fqan(NULL, 0) == NULL, "fqan(NULL)");
    CHECK(jobseal_decision_job_id(NULL) == NULL, "job_id(NULL)");
    CHECK(jobseal_decision_manifest_sha256(NULL) == NULL, "digest(NULL)");
    jobseal_decision_free(NULL);
    jobseal_verifier_free(NULL);
    jobseal_string_free(NULL);
    CHECK(strcmp(jobseal_status_name(JOBSEAL_ERR_CONFIG), "JOBSEAL_ERR_CONFIG") == 0,
          "status name");
    CHECK(strcmp(jobseal_status_name(99), "unknown") == 0, "unknown status");
    CHECK(strlen(jobseal_version()) > 0, "version");

    /* Not a bundle: a deny, which is a decision, not an error status. */
    static const unsigned char junk[] = "not a bundle";
    CHECK(jobseal_check(vf, junk, 0, v->executable, NULL, 0, NULL, 0, &d) ==
              JOBSEAL_OK,
          "an empty bundle is decided");
    CHECK(d != NULL && !jobseal_decision_permitted(d) &&
              same(jobseal_decision_code(d), "bundle.malformed"),
          "an empty bundle: %s", show(jobseal_decision_code(d)));
    jobseal_decision_free(d);
    CHECK(jobseal_check(vf, junk, sizeof junk - 1, v->executable, NULL, 0,
                        NULL, JOBSEAL_NOW, &d) == JOBSEAL_OK,
          "junk is decided");
    CHECK(same(jobseal_decision_code(d), "bundle.malformed") &&
              jobseal_decision_subject(d) == NULL &&
              jobseal_decision_job_id(d) == NULL &&
              jobseal_decision_manifest_sha256(d) == NULL &&
              strlen(jobseal_decision_message(d)) > 0,
          "junk: %s %s", show(jobseal_decision_code(d)),
          show(jobseal_decision_subject(d)));
    CHECK(jobseal_decision_fqan(d, 999) == NULL, "fqan out of range");
    jobseal_decision_free(d);
    jobseal_verifier_free(vf);
}

/* ---- every vector ----------------------------------------------------- */

static int agree = 0;

static void test_vectors(jobseal_verifier *vf, int64_t at) {
    for (size_t i = 0; i < nvectors; i++) {
        struct vector *v = &vectors[i];
        jobseal_decision *d = NULL;
        jobseal_status st =
            jobseal_check(vf, v->bundle, v->bundle_len, v->executable,
                          (const char *const *)v->argv, v->argc, v->job_dir,
                          at, &d);
        CHECK(st == JOBSEAL_OK && d != NULL, "%s: status %s", v->name,
              jobseal_status_name(st));
        if (d == NULL)
            continue;
        const char *code = jobseal_decision_code(d);
        char fqans[4096];
        fqans_of(d, fqans, sizeof fqans);
        snprintf(v->got_code, sizeof v->got_code, "%s", show(code));
        int ok = same(code, v->expected) && same(code, v->rust_code) &&
                 jobseal_decision_permitted(d) == (strcmp(v->expected, "permit") == 0) &&
                 same(jobseal_decision_subject(d), v->rust_subject) &&
                 jobseal_decision_issued_by_end_entity(d) ==
                     (strcmp(v->rust_issued_by_end_entity, "true") == 0) &&
                 same(jobseal_decision_job_id(d), v->rust_job_id) &&
                 same(jobseal_decision_manifest_sha256(d), v->rust_digest) &&
                 strcmp(fqans, v->rust_fqans) == 0 &&
                 strlen(jobseal_decision_message(d)) > 0;
        CHECK(ok,
              "%s: expected %s (Rust: %s, subject %s, job %s, digest %s, "
              "fqans %s), got %s (subject %s, job %s, digest %s, fqans %s: %s)",
              v->name, v->expected, v->rust_code, v->rust_subject,
              v->rust_job_id, v->rust_digest, v->rust_fqans, show(code),
              show(jobseal_decision_subject(d)), show(jobseal_decision_job_id(d)),
              show(jobseal_decision_manifest_sha256(d)), fqans,
              show(jobseal_decision_message(d)));
        jobseal_decision_free(d);

        d = NULL;
        st = jobseal_check_credential(vf, v->bundle, v->bundle_len, at, &d);
        CHECK(st == JOBSEAL_OK && same(jobseal_decision_code(d), v->rust_credential_code),
              "%s: credential only: expected %s, got %s", v->name,
              v->rust_credential_code, show(jobseal_decision_code(d)));
        jobseal_decision_free(d);
        agree += ok;
    }

    /* An argument that is not UTF-8 never equals a signed one. */
    for (size_t i = 0; i < nvectors; i++) {
        struct vector *v = &vectors[i];
        if (strcmp(v->expected, "permit") != 0 || v->argc == 0)
            continue;
        char **argv = calloc(v->argc, sizeof *argv);
        memcpy(argv, v->argv, v->argc * sizeof *argv);
        char bad[] = "\xff\xfe";
        argv[v->argc - 1] = bad;
        jobseal_decision *d = NULL;
        jobseal_check(vf, v->bundle, v->bundle_len, v->executable,
                      (const char *const *)argv, v->argc, v->job_dir, at, &d);
        CHECK(same(jobseal_decision_code(d), "payload.arguments-mismatch"),
              "%s with a non-UTF-8 argument: %s", v->name,
              show(jobseal_decision_code(d)));
        jobseal_decision_free(d);
        free(argv);
        break;
    }
}

/* ---- threads sharing one verifier ------------------------------------- */

struct thread_arg {
    jobseal_verifier *vf;
    int64_t at;
    int disagreements;
};

static void *check_all(void *p) {
    struct thread_arg *a = p;
    for (size_t i = 0; i < nvectors; i++) {
        struct vector *v = &vectors[i];
        jobseal_decision *d = NULL;
        jobseal_check(a->vf, v->bundle, v->bundle_len, v->executable,
                      (const char *const *)v->argv, v->argc, v->job_dir, a->at,
                      &d);
        if (!same(jobseal_decision_code(d), v->expected))
            a->disagreements++;
        jobseal_decision_free(d);
    }
    return NULL;
}

static void test_threads(jobseal_verifier *vf, int64_t at, int n) {
    pthread_t t[16];
    struct thread_arg a[16];
    for (int i = 0; i < n; i++) {
        a[i] = (struct thread_arg){vf, at, 0};
        CHECK(pthread_create(&t[i], NULL, check_all, &a[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        CHECK(a[i].disagreements == 0, "thread %d: %d disagreements", i,
              a[i].disagreements);
    }
}

/* ---- admission -------------------------------------------------------- */

struct fresh {
    char *line;
    char *bundle_path, *executable, *job_dir;
    char **argv;
    size_t argc;
    unsigned char *bundle;
    size_t bundle_len;
};

static void load_fresh(const char *path, struct fresh *out, int n) {
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int i = 0;
    while (f != NULL && i < n && (len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[len - 1] = '\0';
        struct fresh *x = &out[i++];
        x->line = strdup(line);
        char *fields[32];
        int k = split(x->line, fields, 32);
        x->bundle_path = fields[0];
        x->executable = fields[1];
        x->job_dir = fields[2];
        x->argc = (size_t)(k - 3);
        x->argv = calloc(x->argc + 1, sizeof *x->argv);
        for (size_t j = 0; j < x->argc; j++)
            x->argv[j] = fields[3 + j];
        x->bundle = (unsigned char *)read_file(x->bundle_path, &x->bundle_len);
    }
    free(line);
    if (f)
        fclose(f);
    if (i != n || out[n - 1].bundle == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
}

static jobseal_decision *admit(jobseal_verifier *vf, const struct fresh *x,
                               const char *const *argv, size_t argc) {
    jobseal_decision *d = NULL;
    jobseal_status st = jobseal_admit(vf, x->bundle, x->bundle_len,
                                      x->executable, argv, argc, x->job_dir, &d);
    CHECK(st == JOBSEAL_OK && d != NULL, "admit: status %s", jobseal_status_name(st));
    return d;
}

static int count_lines(const char *path) {
    size_t len = 0;
    char *text = read_file(path, &len);
    int n = 0;
    for (size_t i = 0; text != NULL && i < len; i++)
        n += text[i] == '\n';
    free(text);
    return text == NULL ? -1 : n;
}

struct admit_arg {
    jobseal_verifier *vf;
    const struct fresh *x;
    int permitted, replayed;
};

static void *admit_once(void *p) {
    struct admit_arg *a = p;
    jobseal_decision *d = NULL;
    jobseal_admit(a->vf, a->x->bundle, a->x->bundle_len, a->x->executable,
                  (const char *const *)a->x->argv, a->x->argc, a->x->job_dir, &d);
    a->permitted = jobseal_decision_permitted(d);
    a->replayed = same(jobseal_decision_code(d), "replay.job-id-used");
    jobseal_decision_free(d);
    return NULL;
}

/* A child of fork may not use the admission its parent opened (its SQLite
 * replay database above all): it is denied, and a new verifier works. */
static void test_fork(const char *ca, const char *voms, const char *policy,
                      const char *state, const struct fresh *x) {
    jobseal_verifier *vf = NULL;
    char *err = NULL;
    CHECK(jobseal_verifier_new(ca, voms, policy, state, &vf, &err) == JOBSEAL_OK,
          "verifier for fork: %s", show(err));
    /* Admission opens in the parent (this job was admitted already). */
    jobseal_decision *d = admit(vf, x, (const char *const *)x->argv, x->argc);
    CHECK(same(jobseal_decision_code(d), "replay.job-id-used"), "parent: %s",
          show(jobseal_decision_code(d)));
    jobseal_decision_free(d);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        d = NULL;
        jobseal_admit(vf, x->bundle, x->bundle_len, x->executable,
                      (const char *const *)x->argv, x->argc, x->job_dir, &d);
        int ok = d != NULL && !jobseal_decision_permitted(d) &&
                 same(jobseal_decision_code(d), "internal.error") &&
                 strstr(jobseal_decision_message(d), "used across fork") != NULL;
        if (!ok)
            fprintf(stderr, "FAIL child after fork: %s: %s\n",
                    show(jobseal_decision_code(d)), show(jobseal_decision_message(d)));
        jobseal_decision_free(d);
        /* A verifier built in the child admits (here: a replay, decided). */
        jobseal_verifier *mine = NULL;
        jobseal_verifier_new(ca, voms, policy, state, &mine, NULL);
        d = NULL;
        jobseal_admit(mine, x->bundle, x->bundle_len, x->executable,
                      (const char *const *)x->argv, x->argc, x->job_dir, &d);
        if (!same(jobseal_decision_code(d), "replay.job-id-used")) {
            fprintf(stderr, "FAIL child's own verifier: %s\n", show(jobseal_decision_code(d)));
            ok = 0;
        }
        jobseal_decision_free(d);
        jobseal_verifier_free(mine);
        jobseal_verifier_free(vf);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
              WEXITSTATUS(status) == 0,
          "the child after fork (status %d)", status);
    /* The parent's admission is still its own. */
    d = admit(vf, x, (const char *const *)x->argv, x->argc);
    CHECK(same(jobseal_decision_code(d), "replay.job-id-used"), "parent after fork: %s",
          show(jobseal_decision_code(d)));
    jobseal_decision_free(d);
    jobseal_verifier_free(vf);
}

/* Relative paths are fixed when the verifier is built: a host that moves
 * into a job's directory (holding a rogue certs/) before its first
 * admission still uses its own CA directory and state directory. */
static void test_relative_paths(const char *root, const struct fresh *x) {
    char cwd[4096], host[4096], job[4096], path[4200];
    CHECK(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
    snprintf(host, sizeof host, "%s/host", root);
    snprintf(job, sizeof job, "%s/job", root);
    CHECK(chdir(host) == 0, "chdir %s", host);
    jobseal_verifier *vf = NULL;
    char *err = NULL;
    CHECK(jobseal_verifier_new("certs", "vomsdir", "policy.toml", "state", &vf, &err) ==
              JOBSEAL_OK,
          "verifier with relative paths: %s", show(err));
    CHECK(chdir(job) == 0, "chdir %s", job);
    jobseal_decision *d = admit(vf, x, (const char *const *)x->argv, x->argc);
    CHECK(jobseal_decision_permitted(d),
          "admission after chdir into a directory with a rogue certs/: %s: %s",
          show(jobseal_decision_code(d)), show(jobseal_decision_message(d)));
    jobseal_decision_free(d);
    snprintf(path, sizeof path, "%s/state/audit.jsonl", host);
    CHECK(count_lines(path) == 1, "audit records in %s: %d", path, count_lines(path));
    struct stat st;
    CHECK(stat("state", &st) != 0, "a state directory was made in the job's directory");
    jobseal_verifier_free(vf);
    CHECK(chdir(cwd) == 0, "chdir back");
}

static void test_admission(const char *ca, const char *voms, const char *policy,
                           const char *state, const char *fresh_tsv, const char *chdir_root) {
    struct fresh x[3];
    load_fresh(fresh_tsv, x, 3);
    jobseal_verifier *vf = NULL;
    char *err = NULL;
    CHECK(jobseal_verifier_new(ca, voms, policy, state, &vf, &err) == JOBSEAL_OK,
          "verifier with state: %s", show(err));

    /* The wrong arguments: denied, and the job's use is not spent. */
    const char *wrong[] = {"--events", "999999"};
    jobseal_decision *d = admit(vf, &x[0], wrong, 2);
    CHECK(same(jobseal_decision_code(d), "payload.arguments-mismatch"),
          "admit with other arguments: %s", show(jobseal_decision_code(d)));
    jobseal_decision_free(d);

    d = admit(vf, &x[0], (const char *const *)x[0].argv, x[0].argc);
    CHECK(jobseal_decision_permitted(d) && same(jobseal_decision_code(d), "permit"),
          "first admission: %s: %s", show(jobseal_decision_code(d)),
          show(jobseal_decision_message(d)));
    CHECK(jobseal_decision_subject(d) != NULL &&
              jobseal_decision_subject(d)[0] == '/' &&
              strlen(show(jobseal_decision_job_id(d))) == 32 &&
              strlen(show(jobseal_decision_manifest_sha256(d))) == 64,
          "who and what of a permit: %s %s %s", show(jobseal_decision_subject(d)),
          show(jobseal_decision_job_id(d)), show(jobseal_decision_manifest_sha256(d)));
    jobseal_decision *first = d;

    d = admit(vf, &x[0], (const char *const *)x[0].argv, x[0].argc);
    CHECK(!jobseal_decision_permitted(d) &&
              same(jobseal_decision_code(d), "replay.job-id-used"),
          "second admission: %s", show(jobseal_decision_code(d)));
    jobseal_decision_free(d);

    /* Checking records nothing and spends nothing. */
    d = NULL;
    jobseal_check(vf, x[0].bundle, x[0].bundle_len, x[0].executable,
                  (const char *const *)x[0].argv, x[0].argc, x[0].job_dir,
                  JOBSEAL_NOW, &d);
    CHECK(jobseal_decision_permitted(d), "check after admission: %s",
          show(jobseal_decision_code(d)));
    jobseal_decision_free(d);

    char log[4096];
    snprintf(log, sizeof log, "%s/audit.jsonl", state);
    CHECK(count_lines(log) == 3, "audit records: %d, expected 3", count_lines(log));

    /* Threads admitting the same job at once: exactly one runs. */
    enum { N = 8 };
    pthread_t t[N];
    struct admit_arg a[N];
    for (int i = 0; i < N; i++) {
        a[i] = (struct admit_arg){vf, &x[1], 0, 0};
        pthread_create(&t[i], NULL, admit_once, &a[i]);
    }
    int permitted = 0, replayed = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        permitted += a[i].permitted;
        replayed += a[i].replayed;
    }
    CHECK(permitted == 1 && replayed == N - 1,
          "%d threads admitting one job: %d permitted, %d replays", N, permitted,
          replayed);
    CHECK(count_lines(log) == 3 + N, "audit records: %d, expected %d",
          count_lines(log), 3 + N);

    /* A decision outlives its verifier. */
    jobseal_verifier_free(vf);
    CHECK(same(jobseal_decision_code(first), "permit"), "decision after free");
    jobseal_decision_free(first);

    /* Admission that cannot be set up denies (fail closed), twice. */
    char blocked[4096];
    snprintf(blocked, sizeof blocked, "%s/audit.jsonl/state", state);
    CHECK(jobseal_verifier_new(ca, voms, policy, blocked, &vf, &err) == JOBSEAL_OK,
          "verifier with an unusable state directory: %s", show(err));
    for (int i = 0; i < 2; i++) {
        d = admit(vf, &x[0], (const char *const *)x[0].argv, x[0].argc);
        CHECK(!jobseal_decision_permitted(d) &&
                  same(jobseal_decision_code(d), "replay.store-unavailable"),
              "admission without a usable state directory: %s: %s",
              show(jobseal_decision_code(d)), show(jobseal_decision_message(d)));
        jobseal_decision_free(d);
    }
    jobseal_verifier_free(vf);

    test_fork(ca, voms, policy, state, &x[0]);
    test_relative_paths(chdir_root, &x[2]);
    for (int i = 0; i < 3; i++) {
        free(x[i].line);
        free(x[i].argv);
        free(x[i].bundle);
    }
}

/* ---- decisions out ---------------------------------------------------- */

static int by_name(const void *a, const void *b) {
    return strcmp(((const struct vector *)a)->name, ((const struct vector *)b)->name);
}

static void write_decisions(void) {
    const char *path = getenv("JOBSEAL_DECISIONS_OUT");
    if (path == NULL || path[0] == '\0')
        return;
    qsort(vectors, nvectors, sizeof *vectors, by_name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "cannot write %s", path);
    if (f == NULL)
        return;
    for (size_t i = 0; i < nvectors; i++)
        fprintf(f, "%s\t%s\n", vectors[i].name,
                vectors[i].got_code[0] ? vectors[i].got_code : "(none)");
    CHECK(fclose(f) == 0, "cannot write %s", path);
}

int main(int argc, char **argv) {
    if (argc != 10) {
        fprintf(stderr,
                "usage: %s VECTORS_TSV CA_DIR VOMS_DIR POLICY AT STATE_DIR "
                "FRESH_CA FRESH_TSV CHDIR_ROOT\n",
                argv[0]);
        return 2;
    }
    const char *ca = argv[2], *voms = argv[3], *policy = argv[4];
    int64_t at = strtoll(argv[5], NULL, 10);
    const char *threads_env = getenv("JOBSEAL_C_TEST_THREADS");
    int threads = threads_env ? atoi(threads_env) : 4;
    if (threads < 1 || threads > 16)
        threads = 4;
    load_vectors(argv[1]);
    CHECK(nvectors > 0, "no vectors");

    test_misuse(ca, voms, policy, &vectors[0]);

    jobseal_verifier *vf = NULL;
    char *err = NULL;
    CHECK(jobseal_verifier_new(ca, voms, policy, NULL, &vf, &err) == JOBSEAL_OK,
          "verifier: %s", show(err));
    if (vf != NULL) {
        test_vectors(vf, at);
        test_threads(vf, at, threads);
        jobseal_verifier_free(vf);
    }
    test_admission(argv[7], voms, policy, argv[6], argv[8], argv[9]);
    write_decisions();
    free_vectors();

    printf("c api: %zu vectors run, %d agree with the Rust API; %d threads; "
           "%d checks, %d failed\n",
           nvectors, agree, threads, checks, failures);
    return failures == 0 ? 0 : 1;
}
