/*
 * lcmaps_jobseal.so: an LCMAPS plugin that accepts a job-bound proxy
 * (jobseal bundle) in place of verify-proxy, and leaves the account mapping
 * to the plugins after it (localaccount, poolaccount, ...).
 *
 *   jobseal = "lcmaps_jobseal.so -cadir DIR -vomsdir DIR -policy FILE"
 *   glexec:
 *   jobseal -> localaccount
 *
 * (in gLExec's lcmaps.db only, never one shared with storage front-ends,
 * and never with a false branch "jobseal -> a | b": b would run on a deny).
 *
 * LCMAPS hands a plugin the credential (the PEM string of
 * lcmaps_run_with_pem_and_return_account), not the command to run. So this
 * plugin checks the chain, the binding, the manifest and the site policy
 * (jobseal_check_credential: steps 1-4 and 6 of spec/jobseal.md) and NOT
 * the payload: the launcher must check the executable, arguments and inputs
 * (step 5) before it runs anything. It records nothing (no replay record,
 * no audit record). See docs/lcmaps.md.
 *
 * Beyond jobseal's own decision, it refuses (fail closed) when the identity
 * LCMAPS will map differs from the one jobseal verified: LCMAPS's user DN
 * must be the verified end-entity subject, and every FQAN LCMAPS extracted
 * must be one jobseal verified.
 *
 * Every decision is logged on LOG_NOTICE as
 *   lcmaps_jobseal-plugin_run(): jobseal decision: CODE: message
 * (CODE is "permit" or a reason code of spec/jobseal.md §9).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lcmaps/lcmaps_arguments.h>
#include <lcmaps/lcmaps_modules.h>

#include "jobseal.h"

#define PLUGIN "lcmaps_jobseal"

/* The plugin interface (LCMAPS looks these up with dlsym). */
int plugin_initialize(int argc, char **argv);
int plugin_introspect(int *argc, lcmaps_argument_t **argv);
int plugin_run(int argc, lcmaps_argument_t *argv);
int plugin_verify(int argc, lcmaps_argument_t *argv);
int plugin_terminate(void);

static jobseal_verifier *verifier = NULL;

static const char *show(const char *s) { return s != NULL ? s : "(none)"; }

int plugin_initialize(int argc, char **argv) {
    const char *cadir = NULL, *vomsdir = NULL, *policy = NULL;
    for (int i = 1; i < argc; i++) {
        const char **slot = NULL;
        if (strcmp(argv[i], "-cadir") == 0 || strcmp(argv[i], "-certdir") == 0)
            slot = &cadir;
        else if (strcmp(argv[i], "-vomsdir") == 0)
            slot = &vomsdir;
        else if (strcmp(argv[i], "-policy") == 0)
            slot = &policy;
        if (slot == NULL || i + 1 >= argc || argv[i + 1][0] == '\0') {
            lcmaps_log(LOG_ERR,
                       PLUGIN "-plugin_initialize(): unknown argument or missing "
                              "value: %s (known: -cadir DIR, -vomsdir DIR, -policy FILE)\n",
                       argv[i]);
            return LCMAPS_MOD_FAIL;
        }
        *slot = argv[++i];
    }
    if (verifier != NULL) {
        jobseal_verifier_free(verifier);
        verifier = NULL;
    }
    char *error = NULL;
    /* No state directory: this plugin only checks, it never admits. */
    jobseal_status st =
        jobseal_verifier_new(cadir, vomsdir, policy, NULL, &verifier, &error);
    if (st != JOBSEAL_OK) {
        lcmaps_log(LOG_ERR, PLUGIN "-plugin_initialize(): cannot set up jobseal: %s (%s)\n",
                   show(error), jobseal_status_name(st));
        jobseal_string_free(error);
        return LCMAPS_MOD_FAIL;
    }
    lcmaps_log(LOG_INFO,
               PLUGIN "-plugin_initialize(): jobseal %s, CA directory %s, VOMS "
                      "directory %s, policy %s\n",
               jobseal_version(), show(cadir), show(vomsdir), show(policy));
    return LCMAPS_MOD_SUCCESS;
}

int plugin_introspect(int *argc, lcmaps_argument_t **argv) {
    static lcmaps_argument_t args[] = {
        {"user_dn", "char *", 0, NULL},
        {"pem_string", "char *", 0, NULL},
        {"nfqan", "int", 0, NULL},
        {"fqan_list", "char **", 0, NULL},
        {NULL, NULL, -1, NULL},
    };
    *argv = args;
    *argc = lcmaps_cntArgs(args);
    return LCMAPS_MOD_SUCCESS;
}

/* The value of a run variable of pointer type, or NULL. */
static void *run_var(const char *name, const char *type, int argc, lcmaps_argument_t *argv) {
    void **value = lcmaps_getArgValue(name, type, argc, argv);
    return value != NULL ? *value : NULL;
}

static int decide(int argc, lcmaps_argument_t *argv, const char *fn) {
    if (verifier == NULL) {
        lcmaps_log(LOG_ERR, PLUGIN "-%s(): not initialised\n", fn);
        return LCMAPS_MOD_FAIL;
    }
    const char *pem = run_var("pem_string", "char *", argc, argv);
    if (pem == NULL) {
        lcmaps_log(LOG_ERR,
                   PLUGIN "-%s(): no PEM credential: the jobseal plugin needs an "
                          "LCMAPS interface that passes the PEM string "
                          "(lcmaps_run_with_pem_and_return_account)\n",
                   fn);
        return LCMAPS_MOD_FAIL;
    }
    jobseal_decision *d = NULL;
    jobseal_status st = jobseal_check_credential(
        verifier, (const uint8_t *)pem, strlen(pem), JOBSEAL_NOW, &d);
    if (st != JOBSEAL_OK) {
        lcmaps_log(LOG_ERR, PLUGIN "-%s(): jobseal failed: %s\n", fn, jobseal_status_name(st));
        return LCMAPS_MOD_FAIL;
    }
    const char *subject = jobseal_decision_subject(d);
    lcmaps_log(LOG_NOTICE, PLUGIN "-%s(): jobseal decision: %s: %s (subject %s, job %s)\n",
               fn, jobseal_decision_code(d), jobseal_decision_message(d), show(subject),
               show(jobseal_decision_job_id(d)));
    int ok = jobseal_decision_permitted(d);

    /* The mapping plugins after this one map what LCMAPS extracted from the
     * PEM itself: allow only the identity jobseal verified. */
    const char *user_dn = run_var("user_dn", "char *", argc, argv);
    if (ok && (user_dn == NULL || subject == NULL || strcmp(user_dn, subject) != 0)) {
        lcmaps_log(LOG_NOTICE,
                   PLUGIN "-%s(): jobseal decision: lcmaps.identity-mismatch: LCMAPS "
                          "would map the DN \"%s\", not the verified end entity \"%s\"\n",
                   fn, show(user_dn), show(subject));
        ok = 0;
    }
    int *nfqan = lcmaps_getArgValue("nfqan", "int", argc, argv);
    char **fqans = run_var("fqan_list", "char **", argc, argv);
    for (int i = 0; ok && nfqan != NULL && fqans != NULL && i < *nfqan; i++) {
        int verified = 0;
        for (size_t j = 0; !verified && j < jobseal_decision_fqan_count(d); j++)
            verified = fqans[i] != NULL && strcmp(fqans[i], jobseal_decision_fqan(d, j)) == 0;
        if (!verified) {
            lcmaps_log(LOG_NOTICE,
                       PLUGIN "-%s(): jobseal decision: lcmaps.identity-mismatch: LCMAPS "
                              "holds the FQAN \"%s\", which jobseal did not verify\n",
                       fn, show(fqans[i]));
            ok = 0;
        }
    }
    jobseal_decision_free(d);
    return ok ? LCMAPS_MOD_SUCCESS : LCMAPS_MOD_FAIL;
}

int plugin_run(int argc, lcmaps_argument_t *argv) { return decide(argc, argv, "plugin_run"); }

int plugin_verify(int argc, lcmaps_argument_t *argv) {
    return decide(argc, argv, "plugin_verify");
}

int plugin_terminate(void) {
    jobseal_verifier_free(verifier);
    verifier = NULL;
    return LCMAPS_MOD_SUCCESS;
}
