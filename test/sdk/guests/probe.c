/* The C SDK's test module (test/sdk/c.test.ts): every part of vecron.h but the host functions. */
#include "vecron.h"

static void probe(const vecron_json *input, vecron_writer *out) {
  const char *mode = vecron_string(vecron_get(input, "mode"));
  if (mode && strcmp(mode, "verdict") == 0) {
    vecron_errors e = {0};
    vecron_errors_add(&e, "field %s is required", "a");
    vecron_errors_add(&e, "field %s is required", "b");
    vecron_w_invalid(out, &e);
    return;
  }
  if (mode && strcmp(mode, "route") == 0) {
    vecron_w_object(out);
    vecron_route(out, vecron_string(vecron_get(input, "to")));
    vecron_w_end_object(out);
    return;
  }
  vecron_debug("debug line");
  vecron_info("text has %zu bytes", vecron_get(input, "text") ? vecron_get(input, "text")->string_len : 0);
  vecron_warn("warn line");
  vecron_error("error line");
  vecron_set_context_json("probe", vecron_get(input, "n"));
  vecron_set_context_string("greeting", "xin chào \"quoted\"\n");
  int bad = vecron_set_context("broken", "{not json");

  vecron_w_object(out);
  vecron_w_kv_json(out, "echo", input);
  vecron_w_kv_json(out, "second_name", vecron_path(input, "list.1.name"));
  vecron_w_kv_json(out, "region", vecron_get_context("region"));
  vecron_w_kv_json(out, "dotted", vecron_get_context("variables.region"));
  vecron_w_kv_bool(out, "missing_is_null", vecron_get_context("no_such_key") == NULL);
  vecron_w_kv_int(out, "set_broken", bad);
  vecron_w_kv_int(out, "list_len", (long long)vecron_len(vecron_get(input, "list")));
  vecron_w_kv_bool(out, "n_is_integer", vecron_is_integer(vecron_get(input, "n")));
  vecron_w_key(out, "numbers");
  vecron_w_array(out);
  vecron_w_number(out, 0.1);
  vecron_w_number(out, -2.5e-7);
  vecron_w_number(out, 1e21);
  vecron_w_number(out, 123456789012.0);
  vecron_w_number(out, NAN);
  vecron_w_end_array(out);
  vecron_w_end_object(out);
}
VECRON_ENTRY(probe, probe)

#ifdef PROBE_HOSTS
/* Calls every host function (compiled and import-checked; run once the host functions are merged). */
static void hosts(const vecron_json *input, vecron_writer *out) {
  vecron_error err;
  vecron_http_response resp;
  vecron_db_result rows;
  const char *content;
  size_t len;
  int b64;
  long size;
  char hex[129], uuid[37];
  const vecron_json *files;
  int64_t now;
  const char *iso;
  (void)input;
  vecron_w_object(out);
  vecron_w_key(out, "http");
  if (vecron_http("GET", vecron_string(vecron_get(input, "url")), NULL, NULL, &resp, &err) == 0) vecron_w_int(out, resp.status);
  else vecron_w_string(out, err.code);
  vecron_w_key(out, "db");
  if (vecron_db_query("main", "SELECT 1 AS one", "[]", &rows, &err) == 0) vecron_w_json(out, rows.rows);
  else vecron_w_string(out, err.code);
  vecron_w_key(out, "write");
  if (vecron_file_write("out/a.txt", "hello", 5, &size, hex, &err) == 0) vecron_w_string(out, hex);
  else vecron_w_string(out, err.code);
  vecron_w_key(out, "read");
  if (vecron_file_read("out/a.txt", &content, &len, &b64, &err) == 0) vecron_w_string_n(out, content, len);
  else vecron_w_string(out, err.code);
  vecron_w_key(out, "list");
  if (vecron_file_list("out/", &files, &err) == 0) vecron_w_json(out, files);
  else vecron_w_string(out, err.code);
  vecron_w_key(out, "sha256");
  if (vecron_sha256("abc", 3, hex, &err) == 0) vecron_w_string(out, hex);
  else vecron_w_string(out, err.code);
  vecron_w_key(out, "hmac");
  if (vecron_hmac_sha256("SIGNING_KEY", "abc", 3, hex, &err) == 0) vecron_w_string(out, hex);
  else vecron_w_string(out, err.code);
  vecron_w_key(out, "uuid");
  if (vecron_uuid(uuid, &err) == 0) vecron_w_int(out, (long long)strlen(uuid));
  else vecron_w_string(out, err.code);
  vecron_w_key(out, "now");
  if (vecron_time_now(NULL, &now, &iso, &err) == 0) vecron_w_bool(out, now > 0 && iso != NULL);
  else vecron_w_string(out, err.code);
  vecron_w_end_object(out);
}
VECRON_ENTRY(hosts, hosts)
#endif
