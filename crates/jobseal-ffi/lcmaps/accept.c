/*
 * lcmaps_accept.so: a test stand-in for whatever plugin heads another
 * policy of an lcmaps.db (verify-proxy for ordinary proxies, say): it
 * accepts every credential. tests/lcmaps.rs uses it to show that, when
 * gLExec names no policy, a jobseal deny falls through to the next policy.
 */
#include <stddef.h>

#include <lcmaps/lcmaps_arguments.h>
#include <lcmaps/lcmaps_modules.h>

int plugin_initialize(int argc, char **argv);
int plugin_introspect(int *argc, lcmaps_argument_t **argv);
int plugin_run(int argc, lcmaps_argument_t *argv);
int plugin_verify(int argc, lcmaps_argument_t *argv);
int plugin_terminate(void);

int plugin_initialize(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return LCMAPS_MOD_SUCCESS;
}

int plugin_introspect(int *argc, lcmaps_argument_t **argv) {
    static lcmaps_argument_t args[] = {{NULL, NULL, -1, NULL}};
    *argv = args;
    *argc = 0;
    return LCMAPS_MOD_SUCCESS;
}

int plugin_run(int argc, lcmaps_argument_t *argv) {
    (void)argc;
    (void)argv;
    lcmaps_log(LOG_NOTICE, "lcmaps_accept-plugin_run(): accepted\n");
    return LCMAPS_MOD_SUCCESS;
}

int plugin_verify(int argc, lcmaps_argument_t *argv) { return plugin_run(argc, argv); }

int plugin_terminate(void) { return LCMAPS_MOD_SUCCESS; }
