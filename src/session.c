/*-------------------------------------------------------------------------
 *
 * session.c
 *	  Session windows (docs/semantics.md §2): per group key, each event opens
 *	  [t, t + gap); sessions merge when the next one starts at or before the
 *	  end of the current one (touching sessions merge); the merged end is
 *	  the greatest end.
 *
 * The state keeps one group per key (window bounds 0, 0) whose stored form
 * packs all open sessions of that key: for each, its bounds and its
 * aggregate states (a minimal tuple of q->state_desc).  A trigger unpacks
 * the sessions of the keys it touches, adds events, merges sessions (with
 * the aggregates' combine functions) and packs them back.
 *
 * Invariant: the open sessions of a key are sorted by start and neither
 * overlap nor touch.  So the sessions an event's interval [t, t + gap]
 * meets form one run, and merging them with the event keeps the invariant.
 *
 *-------------------------------------------------------------------------
 */
#include "streamagg.h"

#include "access/htup_details.h"
#include "lib/stringinfo.h"
#include "utils/memutils.h"

#include "session.h"
#include "window.h"
#include "aggregate.h"
#include "group.h"

/* Header of one packed session; its state tuple follows. */
typedef struct PackedSession
{
	int64		start;
	int64		end;
	uint32		len;			/* of the minimal tuple that follows */
} PackedSession;

/* The packed sessions of a group's stored states (a bytea), or NULL. */
static bytea *
packed_sessions(SaQuery *q, MinimalTuple group_states)
{
	Datum		value;
	bool		isnull;
	HeapTupleData htup;

	if (group_states == NULL)
		return NULL;
	htup.t_len = group_states->t_len + MINIMAL_TUPLE_OFFSET;
	htup.t_data = (HeapTupleHeader) ((char *) group_states - MINIMAL_TUPLE_OFFSET);
	value = heap_getattr(&htup, 1, q->group_state_desc, &isnull);
	return isnull ? NULL : DatumGetByteaPP(value);
}

/*
 * Walk the packed sessions: calls visit(start, end, states) for each, with
 * the state tuple copied into aligned memory.
 */
typedef void (*SessionVisitor) (void *arg, int64 start, int64 end,
								MinimalTuple states);

static void
walk_packed(bytea *packed, SessionVisitor visit, void *arg)
{
	char	   *p;
	char	   *stop;

	if (packed == NULL)
		return;
	p = VARDATA_ANY(packed);
	stop = p + VARSIZE_ANY_EXHDR(packed);
	while (p < stop)
	{
		PackedSession header;
		MinimalTuple states;

		memcpy(&header, p, sizeof(header));
		p += sizeof(header);
		states = palloc(header.len);
		memcpy(states, p, header.len);
		p += header.len;
		visit(arg, header.start, header.end, states);
	}
}

static void
append_packed(StringInfo buf, int64 start, int64 end, MinimalTuple states)
{
	PackedSession header = {start, end, states->t_len};

	appendBinaryStringInfo(buf, (char *) &header, sizeof(header));
	appendBinaryStringInfo(buf, (char *) states, states->t_len);
}

/* The stored form of a group: one bytea of packed sessions. */
static MinimalTuple
group_states_from(SaQuery *q, StringInfo buf)
{
	bytea	   *b = palloc(VARHDRSZ + buf->len);
	Datum		value;
	bool		isnull = false;

	SET_VARSIZE(b, VARHDRSZ + buf->len);
	memcpy(VARDATA(b), buf->data, buf->len);
	value = PointerGetDatum(b);
	return heap_form_minimal_tuple(q->group_state_desc, &value, &isnull);
}

static SaSession *
new_session(SaGroup *group, int position)
{
	if (group->nsessions == group->session_cap)
	{
		group->session_cap = Max(4, group->session_cap * 2);
		group->sessions = group->sessions ?
			repalloc(group->sessions, sizeof(SaSession) * group->session_cap) :
			palloc(sizeof(SaSession) * group->session_cap);
	}
	memmove(&group->sessions[position + 1], &group->sessions[position],
			sizeof(SaSession) * (group->nsessions - position));
	group->nsessions++;
	memset(&group->sessions[position], 0, sizeof(SaSession));
	return &group->sessions[position];
}

static SaSession *session_for_event(SaAggRuntime *rt, SaQuery *q,
									 SaGroup *group, int64 t);

typedef struct UnpackArg
{
	SaAggRuntime *rt;
	SaQuery    *q;
	SaGroup    *group;
} UnpackArg;

static void
unpack_one(void *arg, int64 start, int64 end, MinimalTuple states)
{
	UnpackArg  *u = arg;
	SaQuery    *q = u->q;
	SaSession  *s = new_session(u->group, u->group->nsessions);

	s->start = s->orig_start = start;
	s->end = s->orig_end = end;
	s->existed = true;
	s->values = palloc(sizeof(Datum) * q->naggs);
	s->nulls = palloc(sizeof(bool) * q->naggs);
	sa_aggs_deform_stored(u->rt, q, states, s->values, s->nulls);
}

/* Live sessions of a group from its stored states (current context). */
void
sa_sessions_unpack(SaAggRuntime *rt, SaQuery *q, SaGroup *group)
{
	UnpackArg	u = {rt, q, group};

	group->sessions = NULL;
	group->nsessions = 0;
	group->session_cap = 0;
	group->retired = NIL;
	walk_packed(packed_sessions(q, group->states), unpack_one, &u);
}

/* Remember bounds whose sink row (complete mode) must go. */
static void
retire(SaGroup *group, SaSession *s)
{
	if (s->existed)
	{
		int64	   *bounds = palloc(sizeof(int64) * 2);

		bounds[0] = s->orig_start;
		bounds[1] = s->orig_end;
		group->retired = lappend(group->retired, bounds);
		s->existed = false;
	}
}

/*
 * Add an event at t to a key's sessions and return the session whose
 * states must take the event's values: a new one, or the merge of every
 * session that [t, t + gap] meets.  What it allocates lives as long as the
 * group, in the group's memory context (the trigger's): the caller's may
 * be reset row by row.  t + gap is inside the range of timestamps
 * (sa_row_windows).
 */
SaSession *
sa_session_for_event(SaAggRuntime *rt, SaQuery *q, SaGroup *group, int64 t)
{
	MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(group));
	SaSession  *s = session_for_event(rt, q, group, t);

	MemoryContextSwitchTo(old);
	return s;
}

/* The invariant of the file header: sorted by start, never touching. */
static inline void
assert_sessions_apart(const SaGroup *group)
{
#ifdef USE_ASSERT_CHECKING
	for (int i = 0; i < group->nsessions; i++)
	{
		Assert(group->sessions[i].start < group->sessions[i].end);
		Assert(i == 0 || group->sessions[i - 1].end < group->sessions[i].start);
	}
#endif
}

static SaSession *
session_for_event(SaAggRuntime *rt, SaQuery *q, SaGroup *group, int64 t)
{
	int64		gap = q->def.session_gap;
	int			first = 0;
	int			last;
	SaSession  *s;

	/* sessions before the event's interval end before t */
	while (first < group->nsessions && group->sessions[first].end < t)
		first++;
	last = first;
	while (last < group->nsessions && group->sessions[last].start <= t + gap)
		last++;
	/* sessions first .. last-1 meet [t, t + gap] */
	if (first == last)
	{
		s = new_session(group, first);
		s->start = t;
		s->end = t + gap;
		s->values = palloc(sizeof(Datum) * q->naggs);
		s->nulls = palloc(sizeof(bool) * q->naggs);
		sa_aggs_init(rt, q, s->values, s->nulls);
		s->changed = true;
		assert_sessions_apart(group);
		return s;
	}

	s = &group->sessions[first];
	if (s->start != Min(s->start, t) || s->end != Max(s->end, t + gap) ||
		last - first > 1)
		retire(group, s);
	s->start = Min(s->start, t);
	s->end = Max(s->end, t + gap);
	for (int other = first + 1; other < last; other++)
	{
		SaSession  *o = &group->sessions[other];

		retire(group, o);
		s->end = Max(s->end, o->end);
		sa_aggs_combine(rt, q, s->values, s->nulls, o->values, o->nulls);
	}
	if (last - first > 1)
	{
		memmove(&group->sessions[first + 1], &group->sessions[last],
				sizeof(SaSession) * (group->nsessions - last));
		group->nsessions -= last - first - 1;
	}
	s->changed = true;
	assert_sessions_apart(group);
	return s;
}

/* The stored form of a group's live sessions; also their earliest end. */
MinimalTuple
sa_sessions_pack(SaAggRuntime *rt, SaQuery *q, SaGroup *group,
				 int64 *min_end)
{
	StringInfoData buf;

	initStringInfo(&buf);
	*min_end = PG_INT64_MAX;
	for (int i = 0; i < group->nsessions; i++)
	{
		SaSession  *s = &group->sessions[i];

		s->states = sa_aggs_form_stored(rt, q, s->values, s->nulls);
		append_packed(&buf, s->start, s->end, s->states);
		*min_end = Min(*min_end, s->end);
	}
	return group_states_from(q, &buf);
}

/* A row to write to or delete from the sink: a session of a group. */
static SaGroup *
session_row(SaQuery *q, SaGroup *group, int64 start, int64 end,
			MinimalTuple states)
{
	SaGroup    *row = palloc0(sizeof(SaGroup));

	row->window_start = start;
	row->window_end = end;
	row->key = group->key;
	row->keyvals = group->keyvals;
	row->keynulls = group->keynulls;
	row->states = states;
	return row;
}

/*
 * Complete mode: the sessions of a touched group changed by this batch (to
 * upsert) and the bounds of sessions merged or extended away (to delete).
 */
void
sa_sessions_changes(SaQuery *q, SaGroup *group, List **upserts,
					List **deletes)
{
	ListCell   *lc;

	for (int i = 0; i < group->nsessions; i++)
	{
		SaSession  *s = &group->sessions[i];

		if (s->changed)
			*upserts = lappend(*upserts, session_row(q, group, s->start,
													 s->end, s->states));
	}
	foreach(lc, group->retired)
	{
		int64	   *bounds = lfirst(lc);

		*deletes = lappend(*deletes, session_row(q, group, bounds[0],
												 bounds[1], NULL));
	}
}

typedef struct CloseArg
{
	SaQuery    *q;
	SaGroup    *group;
	int64		watermark;
	List	   *closed;
	StringInfoData remaining;
	int			nremaining;
	int64		min_end;
} CloseArg;

static void
close_one(void *arg, int64 start, int64 end, MinimalTuple states)
{
	CloseArg   *c = arg;

	if (sa_closed_by(end, c->watermark))
		c->closed = lappend(c->closed, session_row(c->q, c->group, start, end,
												   states));
	else
	{
		append_packed(&c->remaining, start, end, states);
		c->nremaining++;
		c->min_end = Min(c->min_end, end);
	}
}

/*
 * Append mode: split a group's stored sessions into those the watermark
 * closes (appended to *closed, for emission) and the others.  Returns the
 * new stored form, or NULL when no session is left; *min_end is the
 * earliest end of those left.
 */
MinimalTuple
sa_sessions_close(SaQuery *q, SaGroup *group, int64 watermark, List **closed,
				  int64 *min_end)
{
	CloseArg	c;

	c.q = q;
	c.group = group;
	c.watermark = watermark;
	c.closed = *closed;
	initStringInfo(&c.remaining);
	c.nremaining = 0;
	c.min_end = PG_INT64_MAX;
	walk_packed(packed_sessions(q, group->states), close_one, &c);
	*closed = c.closed;
	*min_end = c.min_end;
	return c.nremaining > 0 ? group_states_from(q, &c.remaining) : NULL;
}

/*
 * Every stored session of a group, appended to *rows (for a complete-mode
 * function sink, which receives the whole result table).
 */
void
sa_sessions_all(SaQuery *q, SaGroup *group, List **rows)
{
	int64		min_end;

	/* a watermark past every end: each session goes to *rows */
	(void) sa_sessions_close(q, group, PG_INT64_MAX, rows, &min_end);
}

typedef struct MinEndArg
{
	int64		min_end;
} MinEndArg;

static void
min_end_one(void *arg, int64 start, int64 end, MinimalTuple states)
{
	MinEndArg  *m = arg;

	m->min_end = Min(m->min_end, end);
	pfree(states);
}

/* The earliest end of a group's stored sessions. */
int64
sa_sessions_min_end(SaQuery *q, MinimalTuple group_states)
{
	MinEndArg	m = {PG_INT64_MAX};

	walk_packed(packed_sessions(q, group_states), min_end_one, &m);
	return m.min_end;
}
