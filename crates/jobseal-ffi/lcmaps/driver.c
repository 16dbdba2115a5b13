/*
 * Drives the real LCMAPS framework as gLExec does: lcmaps_init, then
 * lcmaps_run_with_pem_and_return_account with a bundle's PEM, once per
 * case, under the lcmaps.db named by LCMAPS_DB_FILE.
 *
 *   driver LOG_FILE POLICY CASES_TSV
 *
 * POLICY "-" names no policy (LCMAPS then tries the policies of lcmaps.db
 * in turn, until one succeeds).
 * CASES_TSV: one case a line, tab-separated: name, bundle file, the code
 * the jobseal plugin must log ("none": it must not decide, because LCMAPS
 * refused the credential first or the policy does not run it), the
 * account LCMAPS must return ("-": none, the mapping fails), and 1 to
 * write the case to JOBSEAL_LCMAPS_DECISIONS_OUT (if set) as
 * "NAME<TAB>CODE", sorted by name.
 */
#define _POSIX_C_SOURCE 200809L
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lcmaps/lcmaps.h>
#include <lcmaps/lcmaps_return_account_from_pem.h>

struct result {
    char name[256];
    char code[128];
};

static int by_name(const void *a, const void *b) {
    return strcmp(((const struct result *)a)->name, ((const struct result *)b)->name);
}

static char *read_file(const char *path, long from, long *end) {
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    if (size < from)
        from = 0;
    fseek(f, from, SEEK_SET);
    char *buf = calloc((size_t)(size - from) + 1, 1);
    size_t n = buf ? fread(buf, 1, (size_t)(size - from), f) : 0;
    if (buf)
        buf[n] = '\0';
    fclose(f);
    if (end)
        *end = size;
    return buf;
}

/* The code of the last "jobseal decision: CODE:" line in text, or "none". */
static void last_decision(const char *text, char *code, size_t cap) {
    const char *key = "jobseal decision: ", *p = text, *last = NULL;
    while (text != NULL && (p = strstr(p, key)) != NULL) {
        last = p + strlen(key);
        p = last;
    }
    if (last == NULL) {
        snprintf(code, cap, "none");
        return;
    }
    size_t n = strcspn(last, ":\n");
    snprintf(code, cap, "%.*s", (int)n, last);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s LOG_FILE POLICY CASES_TSV\n", argv[0]);
        return 2;
    }
    const char *log_path = argv[1];
    char *policy = argv[2];
    int npols = strcmp(policy, "-") == 0 ? 0 : 1;
    FILE *log = fopen(log_path, "w");
    FILE *cases = fopen(argv[3], "r");
    if (log == NULL || cases == NULL) {
        fprintf(stderr, "cannot open %s or %s\n", log_path, argv[3]);
        return 2;
    }
    setvbuf(log, NULL, _IOLBF, 0);
    if (lcmaps_init(log) != 0) {
        fprintf(stderr, "lcmaps_init failed; log:\n%s\n", read_file(log_path, 0, NULL));
        return 2;
    }

    struct result *recorded = NULL;
    size_t nrecorded = 0;
    int failures = 0, total = 0, permits = 0;
    long offset = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, cases)) > 0) {
        if (line[len - 1] == '\n')
            line[len - 1] = '\0';
        char *fields[5] = {0};
        char *p = line;
        for (int i = 0; i < 5 && p != NULL; i++) {
            fields[i] = p;
            p = strchr(p, '\t');
            if (p != NULL)
                *p++ = '\0';
        }
        if (fields[4] == NULL) {
            fprintf(stderr, "bad case: %s\n", line);
            return 2;
        }
        const char *name = fields[0], *want_code = fields[2], *want_account = fields[3];
        long pem_len = 0;
        char *pem = read_file(fields[1], 0, &pem_len);
        if (pem == NULL) {
            fprintf(stderr, "cannot read %s\n", fields[1]);
            return 2;
        }

        uid_t uid = (uid_t)-1;
        gid_t *pgids = NULL, *sgids = NULL;
        int npgid = 0, nsgid = 0;
        char *poolindex = NULL;
        int rc = lcmaps_run_with_pem_and_return_account(
            NULL, pem, 0, NULL, npols, npols ? &policy : NULL, &uid, &pgids, &npgid, &sgids, &nsgid, &poolindex);
        free(pem);
        fflush(log);
        char *text = read_file(log_path, offset, &offset);
        char code[128];
        last_decision(text, code, sizeof code);
        const char *account = "-";
        if (rc == 0) {
            struct passwd *pw = getpwuid(uid);
            account = pw != NULL ? pw->pw_name : "(unknown uid)";
        }
        int ok = strcmp(code, want_code) == 0 && strcmp(account, want_account) == 0;
        printf("%s %s: lcmaps %s, account %s, jobseal %s\n", ok ? "ok  " : "FAIL", name,
               rc == 0 ? "mapped" : "refused", account, code);
        if (!ok) {
            failures++;
            printf("     expected account %s, jobseal %s; log:\n%s\n", want_account, want_code,
                   text ? text : "");
        }
        free(text);
        total++;
        permits += rc == 0;
        if (strcmp(fields[4], "1") == 0) {
            recorded = realloc(recorded, (nrecorded + 1) * sizeof *recorded);
            snprintf(recorded[nrecorded].name, sizeof recorded[nrecorded].name, "%s", name);
            snprintf(recorded[nrecorded].code, sizeof recorded[nrecorded].code, "%s", code);
            nrecorded++;
        }
    }
    free(line);
    fclose(cases);
    lcmaps_term();

    const char *out = getenv("JOBSEAL_LCMAPS_DECISIONS_OUT");
    if (out != NULL && out[0] != '\0') {
        qsort(recorded, nrecorded, sizeof *recorded, by_name);
        FILE *f = fopen(out, "w");
        for (size_t i = 0; f != NULL && i < nrecorded; i++)
            fprintf(f, "%s\t%s\n", recorded[i].name, recorded[i].code);
        if (f == NULL || fclose(f) != 0) {
            fprintf(stderr, "cannot write %s\n", out);
            failures++;
        }
    }
    free(recorded);
    printf("lcmaps: %d cases, %d mapped, %zu recorded, %d failed\n", total, permits, nrecorded,
           failures);
    return failures == 0 ? 0 : 1;
}
