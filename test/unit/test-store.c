/* SPDX-License-Identifier: Apache-2.0 */
/* The SQLite store: durable writes through the writer thread, reads, retention, reopen. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "store.h"

static char dir[256], path[300];

static int setup(void **state) {
        snprintf(dir, sizeof(dir), "/tmp/vouch-store-test.XXXXXX");
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/vouch.db", dir);
        return 0;
}

static int teardown(void **state) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
        return 0;
}

static int committed;
static void on_done(int error, void *ud) {
        if (error == 0)
                __atomic_add_fetch(&committed, 1, __ATOMIC_SEQ_CST);
        *(int *) ud = error == 0 ? 1 : -1;
}

static vs_device device(const char *id) {
        static uint8_t ek[] = { 1, 2, 3 }, ak[] = { 4, 5 };
        vs_device d = { .ek_public = ek, .ek_public_len = 3, .ak_public = ak, .ak_public_len = 2, .approved = true,
                        .enrolled_at = 1700000000 };
        snprintf(d.id, sizeof(d.id), "%s", id);
        return d;
}

static void test_devices_and_verdicts(void **state) {
        vs_store *s = NULL;
        char err[256];
        int flag = 0;
        assert_int_equal(vs_open(path, 3, &s, err, sizeof(err)), 0);
        vs_device d = device("dev-a");
        assert_int_equal(vs_device_put(s, &d, on_done, &flag), 0);
        vs_flush(s);
        assert_int_equal(flag, 1);
        vs_device got;
        assert_int_equal(vs_device_get(s, "dev-a", &got), 0);
        assert_int_equal(got.ek_public_len, 3);
        assert_int_equal(got.ak_public[1], 5);
        assert_true(got.approved);
        assert_false(got.has_last);
        vs_device_done(&got);
        assert_int_equal(vs_device_get(s, "nope", &got), -ENOENT);

        assert_int_equal(vs_device_put_clock(s, "dev-a", 7, 1, 123456789012ull, NULL, NULL), 0);
        for (uint64_t seq = 1; seq <= 5; seq++) {
                uint8_t rec[8] = { (uint8_t) seq };
                vs_verdict v = { .sequence = seq, .status = seq == 5 ? 2 : 1, .issued_at = 100 + (int64_t) seq,
                                 .expires_at = 200, .record = rec, .record_len = sizeof(rec) };
                snprintf(v.device, sizeof(v.device), "dev-a");
                assert_int_equal(vs_verdict_put(s, &v, NULL, NULL), 0);
        }
        vs_flush(s);
        assert_int_equal(vs_queue_depth(s), 0);
        assert_int_equal(vs_device_get(s, "dev-a", &got), 0);
        assert_true(got.has_last);
        assert_int_equal(got.reset_count, 7);
        assert_int_equal(got.clock, 123456789012ull);
        assert_int_equal(got.sequence, 5);
        vs_device_done(&got);
        vs_verdict v[8];
        /* retention keeps the newest 3 */
        assert_int_equal(vs_verdict_history(s, "dev-a", v, 8), 3);
        assert_int_equal(v[0].sequence, 5);
        assert_int_equal(v[0].status, 2);
        assert_int_equal(v[2].sequence, 3);
        for (int i = 0; i < 3; i++)
                vs_verdict_done(&v[i]);
        assert_int_equal(vs_verdict_latest(s, "dev-a", &v[0]), 0);
        assert_int_equal(v[0].record[0], 5);
        uint64_t g5 = v[0].global_sequence;
        vs_verdict_done(&v[0]);
        assert_int_equal(vs_verdict_latest(s, "dev-b", &v[0]), -ENOENT);
        /* watchers read by global sequence */
        assert_int_equal(vs_verdict_since(s, g5 - 1, v, 8), 1);
        assert_int_equal(v[0].sequence, 5);
        vs_verdict_done(&v[0]);
        vs_close(s);

        /* everything acknowledged survives a reopen */
        assert_int_equal(vs_open(path, 3, &s, err, sizeof(err)), 0);
        assert_int_equal(vs_device_get(s, "dev-a", &got), 0);
        assert_int_equal(got.sequence, 5);
        vs_device_done(&got);
        vs_close(s);
}

static int count_fn(const vs_device *d, void *ud) {
        (*(int *) ud)++;
        return 0;
}

static void test_many_writes_batched(void **state) {
        vs_store *s = NULL;
        char err[256];
        int flags[2000] = { 0 };
        committed = 0;
        assert_int_equal(vs_open(path, 10, &s, err, sizeof(err)), 0);
        for (int i = 0; i < 2000; i++) {
                char id[32];
                snprintf(id, sizeof(id), "dev-%04d", i);
                vs_device d = device(id);
                assert_int_equal(vs_device_put(s, &d, on_done, &flags[i]), 0);
        }
        vs_close(s); /* commits everything queued before closing */
        assert_int_equal(committed, 2000);
        assert_int_equal(vs_open(path, 10, &s, err, sizeof(err)), 0);
        int n = 0;
        assert_int_equal(vs_device_foreach(s, count_fn, &n), 0);
        assert_int_equal(n, 2000);
        vs_close(s);
}

static void test_open_errors(void **state) {
        vs_store *s = NULL;
        char err[256] = "";
        assert_true(vs_open("/nonexistent-dir/x.db", 3, &s, err, sizeof(err)) < 0);
        assert_non_null(strstr(err, "/nonexistent-dir/x.db"));
        /* a database from a newer vouchd is refused, not downgraded */
        assert_int_equal(vs_open(path, 3, &s, err, sizeof(err)), 0);
        vs_close(s);
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "python3 -c \"import sqlite3; c=sqlite3.connect('%s'); c.execute('PRAGMA user_version=9'); c.commit()\"", path);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(vs_open(path, 3, &s, err, sizeof(err)), -EPROTO);
        assert_non_null(strstr(err, "schema version 9"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_devices_and_verdicts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_many_writes_batched, setup, teardown),
                cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
