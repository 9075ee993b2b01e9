/*-------------------------------------------------------------------------
 *
 * notify.c
 *	  The notification sink: one pg_notify per trigger with output, on the
 *	  query's notify_channel, so that dashboards can refresh (docs/sinks.md).
 *
 * The payload is a compact JSON object:
 *	  {"query": "name", "batch_id": 7, "rows": 3,
 *	   "watermark": "2024-05-01T10:00:00+00:00" | null,
 *	   "windows": ["2024-05-01T09:00:00+00:00", ...]}
 * "windows" lists the distinct window (or session) starts of the rows
 * delivered, in order; it is left out for windowless queries.  When the
 * list would not fit in a notification it is replaced by a summary,
 * "windows_summary": {"count": n, "first": ..., "last": ...}, so a payload
 * is always whole JSON.  Like every NOTIFY it is sent at commit, so only
 * committed batches are announced, each once.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "commands/async.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "notify.h"
#include "output.h"

/*
 * Longest payload NOTIFY accepts: async.c's NOTIFY_PAYLOAD_MAX_LENGTH
 * (BLCKSZ - NAMEDATALEN - 128), which it does not export, less its NUL.
 */
#define SA_NOTIFY_PAYLOAD_MAX (BLCKSZ - NAMEDATALEN - 128 - 1)

/* Room a payload needs besides the query name and the window list. */
#define SA_NOTIFY_FIXED_ROOM 256

static void
append_json_time(StringInfo buf, int64 t, Oid type)
{
	char		out[MAXDATELEN + 1];

	appendStringInfo(buf, "\"%s\"",
					 JsonEncodeDateTime(out, TimestampTzGetDatum(t), type,
										NULL));
}

/*
 * Check a query's notify_channel at create_query: a channel name NOTIFY
 * accepts, and a query name short enough for every payload.
 */
void
sa_check_notify_channel(const SaDefinition *def)
{
	StringInfoData name;

	if (def->notify_channel == NULL)
		return;
	if (def->notify_channel[0] == '\0' ||
		strlen(def->notify_channel) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("notify_channel must be a name of 1 to %d bytes",
						NAMEDATALEN - 1)));
	initStringInfo(&name);
	escape_json(&name, def->name);
	if (name.len > SA_NOTIFY_PAYLOAD_MAX - SA_NOTIFY_FIXED_ROOM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("query name is too long for notify_channel"),
				 errdetail("Notification payloads are limited to %d bytes.",
						   SA_NOTIFY_PAYLOAD_MAX)));
}

static int
compare_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * Queue the notification of batch "batch_id", whose output is "output".
 * Nothing is sent for a query without notify_channel or a batch without
 * rows to write.
 */
void
sa_notify_output(SaQuery *q, int64 batch_id, const SaOutput *output,
				 bool has_watermark, int64 watermark)
{
	int			ngroups = output->nrows;
	StringInfoData buf;
	int64	   *starts;
	int			nstarts = 0;
	int			summary_at;

	if (q->def.notify_channel == NULL || ngroups == 0)
		return;
	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"query\": ");
	escape_json(&buf, q->def.name);
	appendStringInfo(&buf, ", \"batch_id\": " INT64_FORMAT ", \"rows\": %d, \"watermark\": ",
					 batch_id, ngroups);
	if (has_watermark)
		append_json_time(&buf, watermark, q->window_type);
	else
		appendStringInfoString(&buf, "null");

	if (!q->def.has_window && !q->def.has_session)
	{
		appendStringInfoChar(&buf, '}');
		Async_Notify(q->def.notify_channel, buf.data);
		return;
	}

	/* the distinct window starts, in order */
	starts = palloc(sizeof(int64) * ngroups);
	for (int g = 0; g < ngroups; g++)
		starts[g] = output->rows[g].window_start;
	qsort(starts, ngroups, sizeof(int64), compare_int64);
	for (int g = 0; g < ngroups; g++)
		if (nstarts == 0 || starts[nstarts - 1] != starts[g])
			starts[nstarts++] = starts[g];

	summary_at = buf.len;
	appendStringInfoString(&buf, ", \"windows\": [");
	for (int i = 0; i < nstarts && buf.len < SA_NOTIFY_PAYLOAD_MAX; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		append_json_time(&buf, starts[i], q->window_type);
	}
	appendStringInfoString(&buf, "]}");
	if (buf.len > SA_NOTIFY_PAYLOAD_MAX)
	{
		/* too many to list: summarise instead */
		buf.len = summary_at;
		buf.data[buf.len] = '\0';
		appendStringInfo(&buf, ", \"windows_summary\": {\"count\": %d, \"first\": ",
						 nstarts);
		append_json_time(&buf, starts[0], q->window_type);
		appendStringInfoString(&buf, ", \"last\": ");
		append_json_time(&buf, starts[nstarts - 1], q->window_type);
		appendStringInfoString(&buf, "}}");
	}
	Async_Notify(q->def.notify_channel, buf.data);
}
