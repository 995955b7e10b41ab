/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The systemd D-Bus calls heal makes (sd-bus): unit properties, jobs waited
 * for via JobRemoved, watching a unit stay active, enrollment drop-ins. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "heal/bus.h"
#include "heal/cleanup.h"
#include "heal/fileio.h"
#include "heal/strv.h"
#include "heal/time-util.h"

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"
#define SD_UNIT "org.freedesktop.systemd1.Unit"
#define SD_SERVICE "org.freedesktop.systemd1.Service"

static inline void bus_error_freep(sd_bus_error *e) { sd_bus_error_free(e); }
#define _cleanup_bus_error_ _cleanup_(bus_error_freep)
static inline void bus_message_unrefp(sd_bus_message **m) { sd_bus_message_unref(*m); }
#define _cleanup_bus_message_ _cleanup_(bus_message_unrefp)
static inline void bus_slot_unrefp(sd_bus_slot **s) { sd_bus_slot_unref(*s); }
#define _cleanup_bus_slot_ _cleanup_(bus_slot_unrefp)
static inline void bus_unrefp(sd_bus **b) { sd_bus_unref(*b); }
#define _cleanup_bus_ _cleanup_(bus_unrefp)

/* sd-bus hands back -errno from the error name; keep a sane value when it does not. */
static int bus_errno(const sd_bus_error *e, int r) {
        int k = sd_bus_error_get_errno(e);

        if (k > 0)
                return -k;
        return r < 0 ? r : -EIO;
}

static bool error_is_no_such_unit(const sd_bus_error *e) {
        return sd_bus_error_has_names(e, "org.freedesktop.systemd1.NoSuchUnit",
                                      "org.freedesktop.DBus.Error.FileNotFound");
}

void heal_unit_info_done(heal_unit_info *i) {
        if (!i)
                return;
        free(i->id);
        free(i->active_state);
        free(i->sub_state);
        free(i->result);
        free(i->unit_file_state);
        free(i->control_group);
        *i = (heal_unit_info) {};
}

int heal_bus_open(sd_bus **ret) {
        _cleanup_bus_ sd_bus *bus = NULL;
        const char *addr = getenv("HEAL_BUS_ADDRESS");
        int r;

        if (!addr || !*addr) {
                r = sd_bus_open_system(&bus);
                if (r < 0)
                        return r;
        } else {
                r = sd_bus_new(&bus);
                if (r < 0)
                        return r;
                r = sd_bus_set_address(bus, addr);
                if (r < 0)
                        return r;
                r = sd_bus_set_bus_client(bus, true);
                if (r < 0)
                        return r;
                r = sd_bus_start(bus);
                if (r < 0)
                        return r;
        }
        /* A helper must never sit waiting for a polkit prompt. */
        (void) sd_bus_set_allow_interactive_authorization(bus, false);
        *ret = TAKE_PTR(bus);
        return 0;
}

/* LoadUnit gives the object path, loading the unit when it is not yet in memory. */
static int unit_path(sd_bus *bus, const char *unit, char **ret) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        const char *path;
        char *p;
        int r;

        if (!bus || !heal_unit_name_is_valid(unit))
                return -EINVAL;
        r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "LoadUnit", &error, &reply, "s", unit);
        if (r < 0)
                return bus_errno(&error, r);
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;
        p = strdup(path);
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

int heal_bus_get_string(sd_bus *bus, const char *path, const char *iface, const char *prop, char **ret) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        char *s = NULL;
        int r;

        if (!bus || !path)
                return -EINVAL;
        r = sd_bus_get_property_string(bus, SD_DEST, path, iface, prop, &error, &s);
        if (r < 0)
                return bus_errno(&error, r);
        *ret = s;
        return 0;
}

int heal_bus_get_trivial(sd_bus *bus, const char *path, const char *iface, const char *prop, char type,
                       void *ret) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        if (!bus || !path)
                return -EINVAL;
        r = sd_bus_get_property_trivial(bus, SD_DEST, path, iface, prop, &error, type, ret);
        if (r < 0)
                return bus_errno(&error, r);
        return 0;
}

static int get_invocation_id(sd_bus *bus, const char *path, char ret[static 33]) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        const uint8_t *p;
        size_t n;
        int r;

        r = sd_bus_get_property(bus, SD_DEST, path, SD_UNIT, "InvocationID", &error, &reply, "ay");
        if (r < 0)
                return bus_errno(&error, r);
        r = sd_bus_message_read_array(reply, 'y', (const void **) &p, &n);
        if (r < 0)
                return r;
        ret[0] = 0;
        if (n != 16)
                return 0;
        for (size_t i = 0; i < n; i++)
                snprintf(ret + 2 * i, 3, "%02x", p[i]);
        return 0;
}

int heal_unit_job_queued_at(sd_bus *bus, const char *path, bool *ret) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        const char *job_path;
        uint32_t id;
        int r;

        if (!bus || !path)
                return -EINVAL;
        r = sd_bus_get_property(bus, SD_DEST, path, SD_UNIT, "Job", &error, &reply, "(uo)");
        if (r < 0)
                return bus_errno(&error, r);
        r = sd_bus_message_read(reply, "(uo)", &id, &job_path);
        if (r < 0)
                return r;
        *ret = id != 0;
        return 0;
}

/* "foo.socket" -> "org.freedesktop.systemd1.Socket": Result lives on the type's interface. */
static char *type_interface(const char *unit) {
        const char *dot = strrchr(unit, '.');
        char *iface;

        if (!dot || !dot[1])
                return NULL;
        if (asprintf(&iface, "org.freedesktop.systemd1.%c%s", dot[1] & ~0x20, dot + 2) < 0)
                return NULL;
        return iface;
}

static bool is_service(const char *unit) {
        size_t n = strlen(unit);

        return n > 8 && strcmp(unit + n - 8, ".service") == 0;
}

int heal_unit_get_info(sd_bus *bus, const char *unit, heal_unit_info *ret) {
        _cleanup_(heal_unit_info_done) heal_unit_info i = {};
        _cleanup_free_ char *path = NULL, *iface = NULL;
        int r;

        r = unit_path(bus, unit, &path);
        if (r < 0)
                return r;
        r = heal_bus_get_string(bus, path, SD_UNIT, "Id", &i.id);
        if (r < 0)
                return r;
        r = heal_bus_get_string(bus, path, SD_UNIT, "ActiveState", &i.active_state);
        if (r < 0)
                return r;
        r = heal_bus_get_string(bus, path, SD_UNIT, "SubState", &i.sub_state);
        if (r < 0)
                return r;
        r = heal_bus_get_string(bus, path, SD_UNIT, "UnitFileState", &i.unit_file_state);
        if (r < 0)
                return r;
        r = get_invocation_id(bus, path, i.invocation_id);
        if (r < 0)
                return r;
        r = heal_unit_job_queued_at(bus, path, &i.job_queued);
        if (r < 0)
                return r;

        /* Only some unit types have these; absent means "not applicable", not an error. */
        iface = type_interface(unit);
        if (!iface)
                return -ENOMEM;
        if (heal_bus_get_string(bus, path, iface, "Result", &i.result) < 0)
                i.result = NULL;
        if (heal_bus_get_string(bus, path, iface, "ControlGroup", &i.control_group) < 0)
                i.control_group = NULL;
        if (is_service(unit)) {
                r = heal_bus_get_trivial(bus, path, SD_SERVICE, "NRestarts", 'u', &i.n_restarts);
                if (r < 0)
                        return r;
                r = heal_bus_get_trivial(bus, path, SD_SERVICE, "ExecMainCode", 'i', &i.exec_main_code);
                if (r < 0)
                        return r;
                r = heal_bus_get_trivial(bus, path, SD_SERVICE, "ExecMainStatus", 'i', &i.exec_main_status);
                if (r < 0)
                        return r;
                r = heal_bus_get_trivial(bus, path, SD_SERVICE, "MainPID", 'u', &i.main_pid);
                if (r < 0)
                        return r;
        }
        *ret = i;
        i = (heal_unit_info) {};
        return 0;
}

int heal_unit_file_state(sd_bus *bus, const char *unit, char **ret) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        const char *state;
        char *s;
        int r;

        if (!bus || !heal_unit_name_is_valid(unit))
                return -EINVAL;
        /* Asked of the manager, not of the loaded unit: it reads the disk now, so
         * a mask made a moment ago counts even before any daemon-reload. */
        r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "GetUnitFileState", &error, &reply, "s",
                               unit);
        if (r < 0)
                return error_is_no_such_unit(&error) ? -ENOENT : bus_errno(&error, r);
        r = sd_bus_message_read(reply, "s", &state);
        if (r < 0)
                return r;
        s = strdup(state);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int heal_unit_is_masked(sd_bus *bus, const char *unit) {
        _cleanup_free_ char *state = NULL;
        int r;

        r = heal_unit_file_state(bus, unit, &state);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        return strcmp(state, "masked") == 0 || strcmp(state, "masked-runtime") == 0;
}

int heal_unit_reset_failed(sd_bus *bus, const char *unit) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        if (!bus || !heal_unit_name_is_valid(unit))
                return -EINVAL;
        r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "ResetFailedUnit", &error, NULL, "s", unit);
        if (r < 0)
                return bus_errno(&error, r);
        return 0;
}

/* Subscribe makes systemd emit signals to us; being subscribed already is fine. */
static int manager_subscribe(sd_bus *bus) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "Subscribe", &error, NULL, NULL);
        if (r < 0 && !sd_bus_error_has_name(&error, "org.freedesktop.systemd1.AlreadySubscribed"))
                return bus_errno(&error, r);
        return 0;
}

typedef struct job_wait {
        const char *job; /* our job's path; NULL until the reply came */
        char *result;    /* set when its JobRemoved arrived */
        int error;
} job_wait;

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        job_wait *w = userdata;
        const char *path, *unit, *result;
        uint32_t id;
        int r;

        r = sd_bus_message_read(m, "uoss", &id, &path, &unit, &result);
        if (r < 0) {
                w->error = r;
                return 0;
        }
        if (!w->job || w->result || strcmp(path, w->job) != 0)
                return 0;
        w->result = strdup(result);
        if (!w->result)
                w->error = -ENOMEM;
        return 0;
}

/* Dispatch what is queued, then sleep on the bus until @deadline. */
static int bus_step(sd_bus *bus, uint64_t deadline) {
        uint64_t now;
        int r;

        r = sd_bus_process(bus, NULL);
        if (r != 0)
                return r; /* <0 error; >0 more may be queued, loop again */
        now = heal_now_usec(CLOCK_MONOTONIC);
        if (now >= deadline)
                return -ETIMEDOUT;
        r = sd_bus_wait(bus, deadline - now);
        if (r < 0 && r != -EINTR)
                return r;
        return 0;
}

int heal_unit_job(sd_bus *bus, const char *method, const char *unit, uint64_t timeout_usec,
                  char **ret_result) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        _cleanup_bus_slot_ sd_bus_slot *slot = NULL;
        _cleanup_free_ char *job = NULL;
        job_wait w = {};
        uint64_t deadline;
        const char *p;
        int r;

        if (!bus || !method || !heal_unit_name_is_valid(unit))
                return -EINVAL;
        if (strcmp(method, "StartUnit") != 0 && strcmp(method, "RestartUnit") != 0 &&
            strcmp(method, "StopUnit") != 0)
                return -EINVAL;

        r = manager_subscribe(bus);
        if (r < 0)
                return r;
        /* The match goes in before the job is queued: a job that ends at once
         * must still find us listening. Signals that arrive while we wait for
         * the method reply are queued by sd-bus and dispatched below. */
        r = sd_bus_match_signal(bus, &slot, SD_DEST, SD_PATH, SD_MANAGER, "JobRemoved", on_job_removed, &w);
        if (r < 0)
                return r;
        r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, method, &error, &reply, "ss", unit,
                               "replace");
        if (r < 0)
                return bus_errno(&error, r);
        r = sd_bus_message_read(reply, "o", &p);
        if (r < 0)
                return r;
        job = strdup(p);
        if (!job)
                return -ENOMEM;
        w.job = job;

        deadline = heal_now_usec(CLOCK_MONOTONIC) + timeout_usec;
        while (!w.result && w.error == 0) {
                r = bus_step(bus, deadline);
                if (r < 0) {
                        free(w.result);
                        return r;
                }
        }
        if (w.error < 0) {
                free(w.result);
                return w.error;
        }
        r = strcmp(w.result, "done") == 0;
        if (ret_result)
                *ret_result = w.result;
        else
                free(w.result);
        return r;
}

int heal_unit_kill(sd_bus *bus, const char *unit, const char *whom, int sig) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        if (!bus || !whom || !heal_unit_name_is_valid(unit) || sig <= 0)
                return -EINVAL;
        r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "KillUnit", &error, NULL, "ssi", unit, whom,
                               (int32_t) sig);
        if (r < 0)
                return bus_errno(&error, r);
        return 0;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        bool *changed = userdata;

        *changed = true;
        return 0;
}

/* "reloading" is still up and serving; anything else is not active. */
static bool state_is_active(const char *s) {
        return strcmp(s, "active") == 0 || strcmp(s, "reloading") == 0;
}

int heal_unit_watch_active(sd_bus *bus, const char *unit, uint64_t settle_usec, char **ret_state) {
        _cleanup_bus_slot_ sd_bus_slot *slot = NULL;
        _cleanup_free_ char *path = NULL;
        uint64_t deadline;
        bool changed = true; /* read once before the first signal */
        int r;

        r = unit_path(bus, unit, &path);
        if (r < 0)
                return r;
        r = manager_subscribe(bus);
        if (r < 0)
                return r;
        r = sd_bus_match_signal(bus, &slot, SD_DEST, path, "org.freedesktop.DBus.Properties",
                                "PropertiesChanged", on_properties_changed, &changed);
        if (r < 0)
                return r;

        deadline = heal_now_usec(CLOCK_MONOTONIC) + settle_usec;
        for (;;) {
                if (changed) {
                        _cleanup_free_ char *state = NULL;

                        changed = false;
                        r = heal_bus_get_string(bus, path, SD_UNIT, "ActiveState", &state);
                        if (r < 0)
                                return r;
                        if (!state_is_active(state)) {
                                if (ret_state)
                                        *ret_state = TAKE_PTR(state);
                                return 0;
                        }
                }
                r = bus_step(bus, deadline);
                if (r == -ETIMEDOUT)
                        break;
                if (r < 0)
                        return r;
        }
        /* A change that landed with the deadline still counts. */
        if (changed) {
                _cleanup_free_ char *state = NULL;

                r = heal_bus_get_string(bus, path, SD_UNIT, "ActiveState", &state);
                if (r < 0)
                        return r;
                if (!state_is_active(state)) {
                        if (ret_state)
                                *ret_state = TAKE_PTR(state);
                        return 0;
                }
        }
        return 1;
}

int heal_manager_reload(sd_bus *bus) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        if (!bus)
                return -EINVAL;
        /* systemd replies once the reload is complete. */
        r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "Reload", &error, NULL, NULL);
        if (r < 0)
                return bus_errno(&error, r);
        return 0;
}

/* ---- names -------------------------------------------------------------- */

bool heal_unit_name_is_valid(const char *unit) {
        static const char *const types[] = {
                ".service", ".socket", ".target", ".device", ".mount", ".automount",
                ".swap", ".timer", ".path", ".slice", ".scope",
        };
        size_t n;

        if (!unit)
                return false;
        n = strlen(unit);
        if (n == 0 || n > 255 || unit[0] == '.' || unit[0] == '@')
                return false;
        for (const char *c = unit; *c; c++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\@", *c))
                        return false;
        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                size_t t = strlen(types[i]);

                if (n > t && strcmp(unit + n - t, types[i]) == 0)
                        return true;
        }
        return false;
}

int heal_reviver_instance(const char *unit, char **ret) {
        char *s;

        if (!heal_unit_name_is_valid(unit))
                return -EINVAL;
        if (asprintf(&s, "heal-worker-reviver@%s.service", unit) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* ---- OnFailure= and enrollment ------------------------------------------ */

int heal_unit_get_on_failure(sd_bus *bus, const char *unit, char ***ret) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        char **l = NULL;
        int r;

        r = unit_path(bus, unit, &path);
        if (r < 0)
                return r;
        r = sd_bus_get_property_strv(bus, SD_DEST, path, SD_UNIT, "OnFailure", &error, &l);
        if (r < 0)
                return bus_errno(&error, r);
        if (!l) {
                l = calloc(1, sizeof(char *));
                if (!l)
                        return -ENOMEM;
        }
        *ret = l;
        return 0;
}

int heal_unit_is_enrolled(sd_bus *bus, const char *unit) {
        _cleanup_strv_free_ char **deps = NULL;
        _cleanup_free_ char *want = NULL;
        int r;

        r = heal_reviver_instance(unit, &want);
        if (r < 0)
                return r;
        r = heal_unit_get_on_failure(bus, unit, &deps);
        if (r < 0)
                return r;
        for (char **d = deps; *d; d++)
                if (strcmp(*d, want) == 0)
                        return 1;
        return 0;
}

static const char *systemd_root(void) {
        const char *e = getenv("HEAL_SYSTEMD_ROOT");

        return e ? e : "";
}

static const char *conf_dir(bool runtime) {
        return runtime ? "/run/systemd/system" : "/etc/systemd/system";
}

int heal_enroll_dropin_path(const char *unit, bool runtime, char **ret) {
        char *s;

        if (!heal_unit_name_is_valid(unit))
                return -EINVAL;
        if (asprintf(&s, "%s%s/%s.d/%s", systemd_root(), conf_dir(runtime), unit, HEAL_REVIVER_DROPIN_NAME) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

const char *heal_enroll_dropin_builtin(void) {
        /* Keep equal to units/reviver-dropin.conf (test-bus checks). */
        return "# Enrolled in heal (healctl enroll): when this unit fails, heal-worker-reviver\n"
               "# confirms the failure and revives it within the policy's guardrails.\n"
               "# Remove with: healctl unenroll UNIT\n"
               "[Unit]\n"
               "OnFailure=heal-worker-reviver@%n.service\n";
}

/* The whole of a small file; larger than 64 KiB is not a drop-in template. */
static int read_small_file(const char *path, char **ret) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t n;

        f = fopen(path, "re");
        if (!f)
                return -errno;
        buf = malloc(65537);
        if (!buf)
                return -ENOMEM;
        n = fread(buf, 1, 65537, f);
        if (ferror(f))
                return -EIO;
        if (n > 65536)
                return -EFBIG;
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        return 0;
}

int heal_enroll_dropin_text(char **ret) {
        const char *path = getenv("HEAL_REVIVER_DROPIN");
        char *s;
        int r;

        if (!path || !*path)
                path = HEAL_DATADIR "/reviver-dropin.conf";
        r = read_small_file(path, &s);
        if (r == -ENOENT) {
                s = strdup(heal_enroll_dropin_builtin());
                if (!s)
                        return -ENOMEM;
        } else if (r < 0)
                return r;
        *ret = s;
        return 0;
}

static int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int heal_unit_enroll(sd_bus *bus, const char *unit, bool runtime) {
        _cleanup_free_ char *path = NULL, *text = NULL, *old = NULL;
        char *slash;
        int r;

        r = heal_enroll_dropin_path(unit, runtime, &path);
        if (r < 0)
                return r;
        r = heal_enroll_dropin_text(&text);
        if (r < 0)
                return r;
        if (read_small_file(path, &old) >= 0 && strcmp(old, text) == 0)
                return 0;

        slash = strrchr(path, '/');
        *slash = 0;
        r = mkdir_p(path, 0755);
        *slash = '/';
        if (r < 0)
                return r;
        /* Durable: a drop-in lost to a crash would leave the unit unenrolled. */
        r = heal_write_file_atomic_path(path, text, strlen(text), 0644, 0);
        if (r < 0)
                return r;
        if (bus) {
                r = heal_manager_reload(bus);
                if (r < 0)
                        return r;
        }
        return 1;
}

int heal_unit_unenroll(sd_bus *bus, const char *unit, bool runtime) {
        _cleanup_free_ char *path = NULL;
        char *slash;
        int r;

        r = heal_enroll_dropin_path(unit, runtime, &path);
        if (r < 0)
                return r;
        if (unlink(path) < 0)
                return errno == ENOENT ? 0 : -errno;
        slash = strrchr(path, '/');
        *slash = 0;
        (void) rmdir(path); /* only when empty: other drop-ins stay */
        if (bus) {
                r = heal_manager_reload(bus);
                if (r < 0)
                        return r;
        }
        return 1;
}

static bool strv_contains(char **l, const char *s) {
        for (char **i = l; i && *i; i++)
                if (strcmp(*i, s) == 0)
                        return true;
        return false;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int scan_enrolled(bool runtime, char ***l, size_t *n) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int r;

        if (asprintf(&dir, "%s%s", systemd_root(), conf_dir(runtime)) < 0)
                return -ENOMEM;
        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d))) {
                _cleanup_free_ char *unit = NULL, *probe = NULL;
                size_t len = strlen(de->d_name);

                if (len < 3 || strcmp(de->d_name + len - 2, ".d") != 0)
                        continue;
                unit = strndup(de->d_name, len - 2);
                if (!unit)
                        return -ENOMEM;
                if (!heal_unit_name_is_valid(unit) || strv_contains(*l, unit))
                        continue;
                if (asprintf(&probe, "%s/%s/%s", dir, de->d_name, HEAL_REVIVER_DROPIN_NAME) < 0)
                        return -ENOMEM;
                if (access(probe, F_OK) < 0)
                        continue;
                r = heal_strv_consume(l, n, TAKE_PTR(unit));
                if (r < 0)
                        return r;
        }
        return 0;
}

int heal_enrolled_list(char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;
        int r;

        r = scan_enrolled(false, &l, &n);
        if (r < 0)
                return r;
        r = scan_enrolled(true, &l, &n);
        if (r < 0)
                return r;
        if (!l) {
                l = calloc(1, sizeof(char *));
                if (!l)
                        return -ENOMEM;
        }
        qsort(l, n, sizeof(char *), cmp_str);
        *ret = TAKE_PTR(l);
        return (int) n;
}

/* ---- unit files --------------------------------------------------------- */

/* A manager method taking (as states, as patterns), e.g. ListUnitsByPatterns. */
static int call_by_patterns(sd_bus *bus, const char *method, char *const *states, char *const *patterns,
                            sd_bus_message **ret_reply) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_ sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, SD_DEST, SD_PATH, SD_MANAGER, method);
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(m, (char **) states);
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(m, (char **) patterns);
        if (r < 0)
                return r;
        r = sd_bus_call(bus, m, 0, &error, ret_reply);
        return r < 0 ? bus_errno(&error, r) : 0;
}

/* One entry more in each of two parallel lists (copies of @x and @y). */
static int strv_pair_push(char ***a, size_t *na, const char *x, char ***b, size_t *nb, const char *y) {
        int r = heal_strv_consume(a, na, strdup(x));
        return r < 0 ? r : heal_strv_consume(b, nb, strdup(y));
}

/* The end of a reply's array read into two parallel lists of @n entries
 * (@read_r: the last sd_bus_message_read() result): hands them out, empty
 * (not NULL) ones when nothing was found. Returns @n or -errno. */
static int strv_pair_return(sd_bus_message *reply, int read_r, char ***a, char ***b, size_t n, char ***ret_a,
                            char ***ret_b) {
        if (read_r < 0)
                return read_r;
        int r = sd_bus_message_exit_container(reply);
        if (r < 0)
                return r;
        if (!*a) {
                *a = calloc(1, sizeof(char *));
                *b = calloc(1, sizeof(char *));
                if (!*a || !*b)
                        return -ENOMEM;
        }
        if (ret_a)
                *ret_a = TAKE_PTR(*a);
        if (ret_b)
                *ret_b = TAKE_PTR(*b);
        return (int) n;
}

int heal_unit_files_list(sd_bus *bus, char *const *patterns, char ***ret_names, char ***ret_states) {
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        _cleanup_strv_free_ char **names = NULL, **states = NULL;
        size_t n = 0, ns = 0;
        const char *path, *state;
        int r;

        if (!bus || !patterns)
                return -EINVAL;
        r = call_by_patterns(bus, "ListUnitFilesByPatterns", NULL /* every state */, patterns, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(ss)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(reply, "(ss)", &path, &state)) > 0) {
                const char *base = strrchr(path, '/');

                base = base ? base + 1 : path;
                if (strv_contains(names, base))
                        continue; /* the same name in several dirs: systemd reports the one in force first */
                r = strv_pair_push(&names, &n, base, &states, &ns, state);
                if (r < 0)
                        return r;
        }
        return strv_pair_return(reply, r, &names, &states, n, ret_names, ret_states);
}

/* MaskUnitFiles/UnmaskUnitFiles reply a(sss): one entry per symlink changed. */
static int count_changes(sd_bus_message *reply) {
        const char *type, *from, *to;
        int r, n = 0;

        r = sd_bus_message_enter_container(reply, 'a', "(sss)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(reply, "(sss)", &type, &from, &to)) > 0)
                n++;
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(reply);
        return r < 0 ? r : n;
}

static int unit_files_call(sd_bus *bus, const char *method, char *const *units, bool runtime, bool force) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_ sd_bus_message *m = NULL, *reply = NULL;
        int r;

        if (!bus || !units)
                return -EINVAL;
        if (!units[0])
                return 0;
        for (char *const *u = units; *u; u++)
                if (!heal_unit_name_is_valid(*u))
                        return -EINVAL;
        r = sd_bus_message_new_method_call(bus, &m, SD_DEST, SD_PATH, SD_MANAGER, method);
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(m, (char **) units);
        if (r < 0)
                return r;
        r = force ? sd_bus_message_append(m, "bb", (int) runtime, 1) : sd_bus_message_append(m, "b", (int) runtime);
        if (r < 0)
                return r;
        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0)
                return bus_errno(&error, r);
        return count_changes(reply);
}

int heal_unit_files_mask(sd_bus *bus, char *const *units, bool runtime) {
        return unit_files_call(bus, "MaskUnitFiles", units, runtime, true);
}

int heal_unit_files_unmask(sd_bus *bus, char *const *units, bool runtime) {
        return unit_files_call(bus, "UnmaskUnitFiles", units, runtime, false);
}

/* ---- loaded units -------------------------------------------------------- */

int heal_units_list(sd_bus *bus, char *const *states, char *const *patterns, char ***ret_names,
                    char ***ret_paths) {
        _cleanup_bus_message_ sd_bus_message *reply = NULL;
        _cleanup_strv_free_ char **names = NULL, **paths = NULL;
        const char *name, *path;
        size_t n = 0, np = 0;
        int r;

        if (!bus)
                return -EINVAL;
        r = call_by_patterns(bus, "ListUnitsByPatterns", states, patterns, &reply);
        if (r < 0)
                return r;
        /* (name, description, load, active, sub, following, path, job id, job type, job path) */
        r = sd_bus_message_enter_container(reply, 'a', "(ssssssouso)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(reply, "(ssssssouso)", &name, NULL, NULL, NULL, NULL, NULL, &path, NULL,
                                        NULL, NULL)) > 0) {
                r = strv_pair_push(&names, &n, name, &paths, &np, path);
                if (r < 0)
                        return r;
        }
        return strv_pair_return(reply, r, &names, &paths, n, ret_names, ret_paths);
}
