/* backup.h - `glared backup` and `glared restore`.
 *
 * backup DEST (the server may run): DEST/glare.db is a consistent copy of
 * the sqlite database made with sqlite's online backup API, then every
 * stored object the copy references is copied to DEST/blobs/objects/
 * (hard links are not used: a backup must survive the store's removal).
 * Objects are content-addressed and never change once committed, so
 * copying them after the database snapshot is consistent: an object the
 * snapshot names cannot be removed while the snapshot's artifact exists,
 * and if it was removed afterwards (artifact deleted meanwhile) the copy
 * is reported and the backup fails. DEST/MANIFEST records what was taken.
 * PostgreSQL and S3 deployments use their own tools (docs/operations.md);
 * backup says so and exits 2.
 *
 * restore SRC: into the configured (empty) database file and store
 * directory; --force replaces an existing database.
 *
 * Used by cli.c. Uses sqlite3, conf.c.
 */
#ifndef GL_BACKUP_H
#define GL_BACKUP_H

#include "conf.h"

int gl_backup(gl_conf *conf, const char *dest);
int gl_restore(gl_conf *conf, const char *src, int force);

#endif
