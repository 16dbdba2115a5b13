/*
 * The LCMAPS plugin's own checks, with the run variables a host could hand
 * it: lcmaps_jobseal.so is linked into this program, which plays the LCMAPS
 * framework (the real liblcmaps's lcmaps_getArgValue; lcmaps_log is this
 * program's, to read what the plugin logged). For what the real framework
 * cannot be made to give here: Debian's libvomsapi cannot verify the test
 * vectors' (Ed25519) attribute certificates, so the real LCMAPS never
 * extracts an FQAN from them, and the FQAN checks are driven from here.
 *
 *   lcmaps_plugin_test PEM USER_DN FQAN1 FQAN2 CA_DIR VOMS_DIR POLICY
 *
 * PEM: a bundle whose verified FQANs are FQAN1 and FQAN2 (in that order),
 * whose end entity LCMAPS names USER_DN. Run at a time the bundle is valid.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lcmaps/lcmaps_arguments.h>
#include <lcmaps/lcmaps_modules.h>

int plugin_initialize(int argc, char **argv);
int plugin_run(int argc, lcmaps_argument_t *argv);
int plugin_verify(int argc, lcmaps_argument_t *argv);
int plugin_terminate(void);

static char logged[65536];

/* The framework's logger, as the plugin calls it: kept for the checks. */
int lcmaps_log(int prty, const char *fmt, ...) {
    (void)prty;
    size_t used = strlen(logged);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(logged + used, sizeof logged - used, fmt, ap);
    va_end(ap);
    return 0;
}

static int checks = 0, failures = 0;

static void expect(const char *what, int rc, int want, const char *log_has) {
    checks++;
    int ok = rc == want && (log_has == NULL || strstr(logged, log_has) != NULL);
    if (!ok) {
        failures++;
        printf("FAIL %s: %s (expected %s%s%s); log:\n%s\n", what,
               rc == LCMAPS_MOD_SUCCESS ? "success" : "fail",
               want == LCMAPS_MOD_SUCCESS ? "success" : "fail",
               log_has ? ", logging " : "", log_has ? log_has : "", logged);
    } else {
        printf("ok   %s\n", what);
    }
    logged[0] = '\0';
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = calloc((size_t)size + 1, 1);
    if (buf != NULL && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* The run variables of one call; a NULL pointer leaves the variable out. */
struct vars {
    char *pem;
    char *user_dn;
    int *nfqan;
    char ***fqans;
};

static int run(const struct vars *v, int verify) {
    lcmaps_argument_t args[5];
    int n = 0;
    if (v->pem != NULL)
        args[n++] = (lcmaps_argument_t){"pem_string", "char *", 0, (void *)&v->pem};
    if (v->user_dn != NULL)
        args[n++] = (lcmaps_argument_t){"user_dn", "char *", 0, (void *)&v->user_dn};
    if (v->nfqan != NULL)
        args[n++] = (lcmaps_argument_t){"nfqan", "int", 0, v->nfqan};
    if (v->fqans != NULL)
        args[n++] = (lcmaps_argument_t){"fqan_list", "char **", 0, v->fqans};
    args[n] = (lcmaps_argument_t){NULL, NULL, -1, NULL};
    return verify ? plugin_verify(n, args) : plugin_run(n, args);
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s PEM USER_DN FQAN1 FQAN2 CA_DIR VOMS_DIR POLICY\n", argv[0]);
        return 2;
    }
    char *pem = read_file(argv[1]);
    if (pem == NULL) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    char *dn = argv[2], *fqan1 = argv[3], *fqan2 = argv[4];
    char *ca = argv[5], *voms = argv[6], *policy = argv[7];
    const int OK = LCMAPS_MOD_SUCCESS, FAIL = LCMAPS_MOD_FAIL;

    /* Initialisation: -credential-only is required. */
    char *no_flag[] = {"lcmaps_jobseal.so", "-cadir", ca, "-vomsdir", voms, "-policy", policy};
    expect("initialise without -credential-only", plugin_initialize(7, no_flag), FAIL,
           "refusing to start without -credential-only");
    struct vars v = {pem, dn, NULL, NULL};
    int none = -1;
    char **no_list = NULL;
    v.nfqan = &none;
    v.fqans = &no_list;
    expect("run after a refused initialisation", run(&v, 0), FAIL, "not initialised");
    char *unknown[] = {"lcmaps_jobseal.so", "-credential-only", "-payload"};
    expect("an unknown argument", plugin_initialize(3, unknown), FAIL, "unknown argument");
    char *good[] = {"lcmaps_jobseal.so", "-credential-only", "-cadir", ca,
                    "-vomsdir", voms, "-policy", policy};
    expect("initialise with -credential-only", plugin_initialize(8, good), OK,
           "credential only");

    /* No FQANs, as LCMAPS 1.6 says it: the count -1 and no list. */
    expect("no FQANs (count -1, no list)", run(&v, 0), OK, "jobseal decision: permit");
    int zero = 0;
    v.nfqan = &zero;
    expect("no FQANs (count 0, no list)", run(&v, 0), OK, NULL);

    /* FQANs jobseal verified, in any order. */
    char *both[] = {fqan2, fqan1, NULL};
    char **list = both;
    int two = 2;
    v.nfqan = &two;
    v.fqans = &list;
    expect("two verified FQANs", run(&v, 0), OK, NULL);
    expect("two verified FQANs (plugin_verify)", run(&v, 1), OK, NULL);

    /* An FQAN jobseal did not verify. */
    char *forged[] = {fqan1, "/testvo/Role=admin", NULL};
    list = forged;
    expect("an FQAN jobseal did not verify", run(&v, 0), FAIL,
           "holds the FQAN \"/testvo/Role=admin\", which jobseal did not verify");
    char *hole[] = {fqan1, NULL, NULL};
    list = hole;
    expect("a NULL FQAN inside the count", run(&v, 0), FAIL, "lcmaps.identity-mismatch");

    /* Counts and lists that do not go together. */
    list = NULL;
    expect("a count but no list", run(&v, 0), FAIL, "an FQAN count but no FQANs");
    int minus_two = -2;
    v.nfqan = &minus_two;
    expect("a count below -1", run(&v, 0), FAIL, "a negative FQAN count");
    list = both;
    v.nfqan = &none;
    expect("FQANs with the count -1", run(&v, 0), FAIL, "FQANs with the count -1");
    v.nfqan = &two;
    v.fqans = NULL;
    expect("a count variable without a list variable", run(&v, 0), FAIL,
           "an FQAN count without an FQAN list");
    v.nfqan = NULL;
    v.fqans = &list;
    expect("a list variable without a count variable", run(&v, 0), FAIL,
           "an FQAN list without an FQAN count");
    v.fqans = NULL;
    expect("neither FQAN variable", run(&v, 0), OK, NULL);

    /* The DN. */
    v.user_dn = "/O=jobseal test vectors/CN=Mallory";
    expect("another DN", run(&v, 0), FAIL, "would map the DN \"/O=jobseal test vectors/CN=Mallory\"");
    v.user_dn = NULL;
    expect("no DN", run(&v, 0), FAIL, "would map the DN \"(none)\"");
    v.user_dn = dn;
    v.pem = NULL;
    expect("no PEM", run(&v, 0), FAIL, "no PEM credential");

    expect("terminate", plugin_terminate(), OK, NULL);
    v.pem = pem;
    expect("run after terminate", run(&v, 0), FAIL, "not initialised");
    free(pem);
    printf("lcmaps plugin: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
