/*
 * lcmaps_jobseal.so: an LCMAPS plugin that accepts a job-bound proxy
 * (jobseal bundle) in place of verify-proxy, and leaves the account mapping
 * to the plugins after it (localaccount, poolaccount, ...).
 *
 *   jobseal = "lcmaps_jobseal.so -credential-only -cadir DIR -vomsdir DIR -policy FILE"
 *   glexec:
 *   jobseal -> localaccount
 *
 * In gLExec's lcmaps.db only, never one shared with storage front-ends;
 * never with a false branch ("jobseal -> a | b": b runs on a deny); and
 * jobseal must head EVERY policy of that lcmaps.db unless gLExec names the
 * policy to run: when no policy is named, LCMAPS tries the next policy of
 * the file after a failed one, so a jobseal deny would fall through to it.
 * See docs/lcmaps.md.
 *
 * LCMAPS hands a plugin the credential (the PEM string of
 * lcmaps_run_with_pem_and_return_account), not the command to run. So this
 * plugin checks the chain, the binding, the manifest and the site policy
 * (jobseal_check_credential: steps 1-4 and 6 of spec/jobseal.md) and NOT
 * the payload (step 5), NOT single use (step 7) and records nothing (step
 * 8): the launcher must admit the job (jobseal-exec, `jobseal admit` or
 * jobseal_admit) before it runs anything. Because a permit here means so
 * much less than an admission, plugin_initialize refuses to start unless
 * lcmaps.db says -credential-only, the site's statement that it knows.
 *
 * Beyond jobseal's own decision, it refuses (fail closed) when the identity
 * LCMAPS will map differs from the one jobseal verified: LCMAPS's user DN
 * (OpenSSL's X509_NAME_oneline form) must be the verified end-entity
 * subject in that form, and every FQAN LCMAPS extracted must be one jobseal
 * verified.
 *
 * The verifier is one global object, set up by plugin_initialize and freed
 * by plugin_terminate: like LCMAPS itself, the plugin is for hosts that
 * call LCMAPS from one thread at a time (gLExec is one).
 *
 * Every decision is logged on LOG_NOTICE as
 *   lcmaps_jobseal-plugin_run(): jobseal decision: CODE: message
 * (CODE is "permit", a reason code of spec/jobseal.md §9, or
 * lcmaps.identity-mismatch).
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
    int credential_only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-credential-only") == 0) {
            credential_only = 1;
            continue;
        }
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
                              "value: %s (known: -credential-only, -cadir DIR, "
                              "-vomsdir DIR, -policy FILE)\n",
                       argv[i]);
            return LCMAPS_MOD_FAIL;
        }
        *slot = argv[++i];
    }
    if (!credential_only) {
        lcmaps_log(LOG_ERR,
                   PLUGIN "-plugin_initialize(): refusing to start without "
                          "-credential-only: this plugin checks the credential only; it "
                          "does NOT check the payload (executable, arguments, inputs) "
                          "and does NOT enforce single use, so the launcher must admit "
                          "the job (jobseal-exec, or jobseal admit) before it runs "
                          "anything. Add -credential-only to its lcmaps.db entry to say "
                          "that this site's launcher does (see docs/lcmaps.md)\n");
        return LCMAPS_MOD_FAIL;
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
               PLUGIN "-plugin_initialize(): jobseal %s, credential only (no payload "
                      "check, no single use: the launcher admits), CA directory %s, "
                      "VOMS directory %s, policy %s\n",
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

/*
 * jobseal's subject (UTF-8, spec/jobseal.md §6.8) in the form LCMAPS takes
 * its user DN in, OpenSSL's X509_NAME_oneline: every byte outside 0x20-0x7E
 * written as \xHH (uppercase hex), each byte of a UTF-8 sequence on its own
 * ("/CN=\xC3\x89mile"). Malloc'ed; NULL if out of memory.
 *
 * The two forms agree on every name whose values are UTF8String,
 * PrintableString or IA5String in printable ASCII; jobseal writes a '/' or
 * '+' in a value as \/ and \+ (§6.8), as OpenSSL 3 does, a backslash as
 * two, and a leading '#' as \#. Any name the two write differently
 * (non-ASCII text in a BMPString or T61String, a C1 control character, a
 * backslash) is refused by the identity check: fail closed, never a wrong
 * mapping.
 */
static char *openssl_oneline(const char *subject) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(subject);
    char *out = malloc(4 * n + 1), *p = out;
    if (out == NULL)
        return NULL;
    for (const unsigned char *s = (const unsigned char *)subject; *s != '\0'; s++) {
        if (*s < 0x20 || *s > 0x7E) {
            *p++ = '\\';
            *p++ = 'x';
            *p++ = hex[*s >> 4];
            *p++ = hex[*s & 0x0F];
        } else {
            *p++ = (char)*s;
        }
    }
    *p = '\0';
    return out;
}

/* Whether LCMAPS's user DN is the verified subject. */
static int same_identity(const char *user_dn, const char *subject) {
    if (user_dn == NULL || subject == NULL)
        return 0;
    char *oneline = openssl_oneline(subject);
    int same = oneline != NULL && strcmp(user_dn, oneline) == 0;
    free(oneline);
    return same;
}

/* Whether `fqan` is one of the decision's verified FQANs. */
static int verified_fqan(const jobseal_decision *d, const char *fqan) {
    if (fqan == NULL)
        return 0;
    for (size_t j = 0; j < jobseal_decision_fqan_count(d); j++)
        if (strcmp(fqan, jobseal_decision_fqan(d, j)) == 0)
            return 1;
    return 0;
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
    if (ok && !same_identity(user_dn, subject)) {
        lcmaps_log(LOG_NOTICE,
                   PLUGIN "-%s(): jobseal decision: lcmaps.identity-mismatch: LCMAPS "
                          "would map the DN \"%s\", not the verified end entity \"%s\"\n",
                   fn, show(user_dn), show(subject));
        ok = 0;
    }
    /* The FQANs: both run variables or neither; a count of at least -1
     * (LCMAPS 1.6 says -1, with no list, for a credential without FQANs);
     * a list whenever the count is positive, none when it is -1; and each
     * FQAN one that jobseal verified. */
    int *nfqan = lcmaps_getArgValue("nfqan", "int", argc, argv);
    char ***fqan_list = lcmaps_getArgValue("fqan_list", "char **", argc, argv);
    char **fqans = fqan_list != NULL ? *fqan_list : NULL;
    const char *fqan_fault = NULL;
    if ((nfqan == NULL) != (fqan_list == NULL))
        fqan_fault = nfqan != NULL ? "an FQAN count without an FQAN list"
                                   : "an FQAN list without an FQAN count";
    else if (nfqan != NULL && *nfqan < -1)
        fqan_fault = "a negative FQAN count";
    else if (nfqan != NULL && *nfqan == -1 && fqans != NULL)
        fqan_fault = "FQANs with the count -1 (none)";
    else if (nfqan != NULL && *nfqan > 0 && fqans == NULL)
        fqan_fault = "an FQAN count but no FQANs";
    if (ok && fqan_fault != NULL) {
        lcmaps_log(LOG_NOTICE,
                   PLUGIN "-%s(): jobseal decision: lcmaps.identity-mismatch: LCMAPS "
                          "gives %s (count %d)\n",
                   fn, fqan_fault, nfqan != NULL ? *nfqan : 0);
        ok = 0;
    }
    lcmaps_log(LOG_INFO, PLUGIN "-%s(): LCMAPS gives the FQAN count %d, jobseal verified %zu\n",
               fn, nfqan != NULL ? *nfqan : 0, jobseal_decision_fqan_count(d));
    for (int i = 0; ok && nfqan != NULL && fqans != NULL && i < *nfqan; i++) {
        if (!verified_fqan(d, fqans[i])) {
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
