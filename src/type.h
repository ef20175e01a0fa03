/* type.h - what an artifact type looks like to C: plain data only.
 *
 * The field list of every loaded type is copied into these structs
 * (ltype.c fills them), so the metadata store, the JSON limits and the
 * request context use them without the Lua runtime. Also the per-request
 * Lua account (gl_lreq), which every request context carries.
 *
 * Uses jansson (default values); nothing of the project.
 */
#ifndef GL_TYPE_H
#define GL_TYPE_H

#include <stdint.h>
#include <jansson.h>

/* clang-format off */
typedef enum gl_kind {
	GK_STRING, GK_INTEGER, GK_FLOAT, GK_BOOLEAN, GK_VERSION, GK_LINK,
	GK_BLOB, GK_FOLDER, GK_LIST, GK_DICT, GK_DATETIME
} gl_kind;

/* filter operators, as a bit set */
enum {
	GL_OP_EQ = 1 << 0, GL_OP_NEQ = 1 << 1, GL_OP_LT = 1 << 2,
	GL_OP_LTE = 1 << 3, GL_OP_GT = 1 << 4, GL_OP_GTE = 1 << 5,
	GL_OP_IN = 1 << 6, GL_OP_LIKE = 1 << 7
};
/* clang-format on */

typedef struct gl_field {
	char *name;
	gl_kind kind;
	gl_kind elem; /* List / Dict element kind */
	unsigned base : 1, system : 1, mutable_ : 1, required_on_activate : 1,
		sortable : 1, nullable : 1, same_sha256 : 1,
		select_location : 1;
	unsigned filter_ops;   /* GL_OP_* */
	json_t *def;           /* default value or NULL */
	int64_t max_blob_size; /* Blob, Folder */
	int64_t max_folder_size;
	int max_key_length; /* Folder, Dict keys */
	int max_keys;       /* Folder: most blobs it may hold; Dict */
	/* declared limits the C core checks before Lua coerces a value
	 * (jlimits.c); -1: none */
	int max_items;       /* List */
	int max_length;      /* String (characters) */
	int elem_max_length; /* String items of a List or Dict */
} gl_field;

typedef struct gl_type {
	char *name;
	char *display_name; /* may be NULL */
	char *version;
	gl_field *fields;
	int nfields;
	unsigned hooks; /* 1 << GL_HOOK_* (ltype.h) */
	unsigned has_to_dict : 1, has_format_all : 1, is_all : 1;
	int ref; /* Lua registry ref of the compiled type */
} gl_type;

typedef struct gl_types gl_types;

/* What one request has spent in Lua so far. Every call a request makes
 * (hooks, validators, to_dict, ...) draws on the same budget:
 * lua_instruction_limit instructions and lua_time_limit ms of wall time.
 * Zero it for a new request; NULL where a function takes one means a
 * budget of its own for that call alone. */
typedef struct gl_lreq {
	int64_t steps;   /* instructions and charged C work */
	int64_t ns;      /* wall time inside Lua */
	int log_records; /* glare.log records written */
	int64_t log_bytes;
	int log_dropped; /* records refused past the limits */
	const char *rid; /* request id for the log (may be NULL) */
} gl_lreq;

/* glare.log limits per request (docs/types.md) */
#define GL_LOG_RECORDS 100
#define GL_LOG_BYTES 65536
#define GL_LOG_RECORD_MAX 2048

#endif
