/* meta_schema.h - the tables both metadata backends create, written once
 * (private to meta_sqlite.c and meta_pg.c).
 *
 * Each backend builds its schema steps (schema_v1, schema_v2, ...) from
 * these pieces, so a table or column added to one store is added to the
 * other; tests/unit/test_meta_pg.c creates both schemas and compares their
 * tables, columns and indexes. What differs in shape stays in the
 * backend: the property rows (one typeless column in SQLite, a number and
 * a text column in PostgreSQL), the database blob store's tables, the
 * planner statistics SQLite ships, and the counter triggers (plain SQL
 * triggers against PL/pgSQL functions).
 *
 * Before including this header a backend defines the spellings that
 * differ:
 *   MS_CTEXT        text that is compared or sorted (PostgreSQL: bytewise,
 *                   as SQLite compares)
 *   MS_INT8         a 64-bit integer
 *   MS_BOOL         a boolean column; MS_FALSE its false literal and
 *                   MS_TRUE(c) column c as a condition
 *   MS_NULLS_FIRST  an index's order for NULLs where SQLite's default
 *                   (first) matters to a query
 *   MS_NOROWID      what follows a table whose primary key is its storage
 *   MS_SEQ_PK       an increasing key that is never reused
 *   MS_TAGS_KEY     the end of the tags table: its key on (value,
 *                   artifact_id), as a primary key or as an index
 * Statements are ';'-terminated and concatenated, one string per step.
 */
#ifndef GL_META_SCHEMA_H
#define GL_META_SCHEMA_H

/* ---- step 1 ------------------------------------------------------------------- */

/* one row per artifact: base fields as columns (created/updated/
 * activated_at in microseconds since the epoch); doc: the JSON of the
 * other fields (plain text: never queried, the properties table is its
 * index) */
#define MS_ARTIFACTS                                                          \
	"CREATE TABLE artifacts ("                                            \
	" id " MS_CTEXT " NOT NULL PRIMARY KEY,"                              \
	" type_name " MS_CTEXT " NOT NULL,"                                   \
	" name " MS_CTEXT " NOT NULL,"                                        \
	" version " MS_CTEXT " NOT NULL,"                                     \
	" version_prefix " MS_INT8 " NOT NULL,"                               \
	" version_suffix " MS_CTEXT " NOT NULL,"                              \
	" version_meta " MS_CTEXT " NOT NULL,"                                \
	" owner " MS_CTEXT " NOT NULL,"                                       \
	" visibility " MS_CTEXT " NOT NULL,"                                  \
	" status " MS_CTEXT " NOT NULL,"                                      \
	" description " MS_CTEXT ","                                          \
	" display_type_name " MS_CTEXT ","                                    \
	" created_at " MS_INT8 " NOT NULL,"                                   \
	" updated_at " MS_INT8 " NOT NULL,"                                   \
	" activated_at " MS_INT8 ","                                          \
	" revision " MS_INT8 " NOT NULL,"                                     \
	" doc TEXT NOT NULL);"

/* one row per tag, for the tags / tags-any filters */
#define MS_TAGS                                                               \
	"CREATE TABLE tags ("                                                 \
	" value " MS_CTEXT " NOT NULL,"                                       \
	" artifact_id " MS_CTEXT " NOT NULL REFERENCES artifacts(id)"         \
	" ON DELETE CASCADE" MS_TAGS_KEY                                      \
	"CREATE INDEX tags_artifact ON tags(artifact_id);"

/* one row per blob / folder entry, API and internal keys;
 * prev_store/prev_location repeat the replaced record's data key so
 * reference counting sees data a failed re-upload would restore */
/* clang-format off */
#define MS_BLOBS                                                              \
	"CREATE TABLE blobs ("                                                \
	" artifact_id " MS_CTEXT " NOT NULL REFERENCES artifacts(id)"         \
	" ON DELETE CASCADE,"                                                 \
	" field " MS_CTEXT " NOT NULL,"                                       \
	" key " MS_CTEXT " NOT NULL,"                                         \
	" url TEXT, size " MS_INT8 ", md5 TEXT, sha1 TEXT, sha256 TEXT,"      \
	" external " MS_BOOL " NOT NULL DEFAULT " MS_FALSE ","                \
	" status TEXT, content_type TEXT,"                                    \
	" store " MS_CTEXT ", location " MS_CTEXT ", reserved " MS_INT8 ","   \
	" node TEXT,"                                                         \
	" prev TEXT, prev_store " MS_CTEXT ", prev_location " MS_CTEXT ","    \
	" temp TEXT,"                                                         \
	" verified_at " MS_INT8 ", verify_status TEXT, verify_error TEXT,"    \
	" extra TEXT,"                                                        \
	" PRIMARY KEY (artifact_id, field, key));"                            \
	"CREATE INDEX blobs_location ON blobs(store, location);"              \
	"CREATE INDEX blobs_prev_location ON blobs(prev_store, prev_location)"\
	" WHERE prev_location IS NOT NULL;"                                   \
	"CREATE INDEX blobs_verify ON blobs(verified_at" MS_NULLS_FIRST ")"    \
	" WHERE " MS_TRUE("external") ";"                                     \
	"CREATE INDEX blobs_saving ON blobs(artifact_id)"                     \
	" WHERE status = 'saving';"
/* clang-format on */

#define MS_QUOTAS                                                             \
	"CREATE TABLE quotas ("                                               \
	" project_id " MS_CTEXT " NOT NULL,"                                  \
	" quota_name " MS_CTEXT " NOT NULL,"                                  \
	" quota_value " MS_INT8 " NOT NULL,"                                  \
	" PRIMARY KEY (project_id, quota_name))" MS_NOROWID ";"

/* blobs to delete from their store once nothing refers to them */
#define MS_GC_QUEUE                                                           \
	"CREATE TABLE gc_queue ("                                             \
	" store " MS_CTEXT " NOT NULL,"                                       \
	" location " MS_CTEXT " NOT NULL,"                                    \
	" queued_at " MS_INT8 " NOT NULL,"                                    \
	" PRIMARY KEY (store, location))" MS_NOROWID ";"

/* ---- step 3: the scrubber's query (gl_meta_deleted), by age ------------------ */

/* clang-format off */
#define MS_DELETED_INDEX                                                      \
	"CREATE INDEX IF NOT EXISTS artifacts_deleted ON artifacts(updated_at)"\
	" WHERE status = 'deleted';"
/* clang-format on */

/* ---- step 4: the cleanup queue (gl_meta_cleanup_*) -----------------------------
 * S3 aborts and deletes, retried until they succeed. */
#define MS_CLEANUP_QUEUE                                                      \
	"CREATE TABLE cleanup_queue ("                                        \
	" kind " MS_CTEXT " NOT NULL,"                                        \
	" target " MS_CTEXT " NOT NULL,"                                      \
	" arg " MS_CTEXT " NOT NULL,"                                         \
	" attempts INTEGER NOT NULL,"                                         \
	" next_at " MS_INT8 " NOT NULL,"                                      \
	" queued_at " MS_INT8 " NOT NULL,"                                    \
	" error TEXT,"                                                        \
	" PRIMARY KEY (kind, target, arg))" MS_NOROWID ";"                    \
	"CREATE INDEX cleanup_queue_due ON cleanup_queue(next_at);"

/* ---- step 5: events (events.c, docs/notifications.md) -------------------------
 * Webhook subscriptions, and the outbox: one row per event and sink,
 * written in the transaction of the change it reports, claimed by the
 * node that delivers it. A delivery's seq is its id (X-Glare-Delivery),
 * never reused after the row is pruned. */
/* clang-format off */
#define MS_EVENTS                                                             \
	"CREATE TABLE subscriptions ("                                        \
	" id " MS_CTEXT " NOT NULL PRIMARY KEY,"                              \
	" owner " MS_CTEXT " NOT NULL,"                                       \
	" all_projects INTEGER NOT NULL DEFAULT 0,"                           \
	" url TEXT NOT NULL,"                                                 \
	" events " MS_CTEXT " NOT NULL,"                                      \
	" secret TEXT,"                                                       \
	" type_name " MS_CTEXT ","                                            \
	" artifact_id " MS_CTEXT ","                                          \
	" created_at " MS_INT8 " NOT NULL);"                                  \
	"CREATE TABLE outbox ("                                               \
	" seq " MS_SEQ_PK ","                                                 \
	" event_id " MS_CTEXT " NOT NULL,"                                    \
	" event_type " MS_CTEXT " NOT NULL,"                                  \
	" sink " MS_CTEXT " NOT NULL,"                                        \
	" subscription_id " MS_CTEXT ","                                      \
	" created_at " MS_INT8 " NOT NULL,"                                   \
	" body TEXT NOT NULL,"                                                \
	" state " MS_CTEXT " NOT NULL DEFAULT 'pending',"                     \
	" attempts INTEGER NOT NULL DEFAULT 0,"                               \
	" next_at " MS_INT8 " NOT NULL,"                                      \
	" claimed_by TEXT, claim_until " MS_INT8 ","                          \
	" last_at " MS_INT8 ", last_code INTEGER, last_error TEXT,"           \
	" done_at " MS_INT8 ");"                                              \
	GL_MSQL_EVENTS_INDEXES

/* ---- step 6: the counters' tables (docs/storage.md, "Counters") ----------------
 * Kept by each backend's triggers, which follow these in the step. */
#define MS_COUNTERS                                                           \
	"CREATE TABLE quota_usage ("                                          \
	" project_id " MS_CTEXT " NOT NULL,"                                  \
	" type_name " MS_CTEXT " NOT NULL,"                                   \
	" artifacts " MS_INT8 " NOT NULL,"                                    \
	" bytes " MS_INT8 " NOT NULL,"                                        \
	" PRIMARY KEY (project_id, type_name))" MS_NOROWID ";"                \
	"CREATE TABLE artifact_counts ("                                      \
	" type_name " MS_CTEXT " NOT NULL,"                                   \
	" owner " MS_CTEXT " NOT NULL,"                                       \
	" visibility " MS_CTEXT " NOT NULL,"                                  \
	" status " MS_CTEXT " NOT NULL,"                                      \
	" n " MS_INT8 " NOT NULL,"                                            \
	" PRIMARY KEY (type_name, owner, visibility, status))" MS_NOROWID ";" \
	GL_MSQL_COUNTERS_INIT
/* clang-format on */

/* ---- step 8: created_at among the copies -------------------------------------
 * Property and tag rows also repeat their artifact's created_at (which
 * never changes; a put rewrites the rows anyway), the tie-breaker the API
 * adds to every sort: a custom-sorted page driven by a selective filter
 * then takes each match's scope and created_at from the filter's own row
 * and its sort value from an index, and reads whole artifact rows for the
 * page alone (docs/benchmarks.md, "Custom sort from the copies": 1,000
 * matches at 100k, 11-13 ms to 5 with a cold cache, where every match's
 * artifact row was read). */
#define MS_CREATED_COPY(t)                                                    \
	"ALTER TABLE " t " ADD COLUMN created_at " MS_INT8                    \
	" NOT NULL DEFAULT 0;"                                                \
	"UPDATE " t " SET created_at = (SELECT a.created_at FROM artifacts a" \
	" WHERE a.id = " t ".artifact_id);"
#define MS_CREATED_COPIES MS_CREATED_COPY("properties") MS_CREATED_COPY("tags")

#endif
