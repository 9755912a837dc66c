/*
 * qt_limits.h -- every fixed limit in qtdb, each with the reason for its
 * value.  Settings that operators may change (memory budget, ports, ...)
 * live in the config; their *defaults* and hard ceilings live here.
 *
 * Grep tag for constants that must stay in step with DESIGN.md: LIMITS.
 */
#ifndef QT_LIMITS_H
#define QT_LIMITS_H

#include <stdint.h>

/* ---- format/ ---------------------------------------------------------- */

/* Points in one block.  Peers settle on a few thousand (VictoriaMetrics 8K,
 * Prometheus 120): enough for the per-block header and frame-of-reference
 * overhead to vanish (< 0.1 bit/point) while a block still decodes in a few
 * microseconds and block statistics stay useful for pruning. */
#define QT_BLOCK_POINTS_MAX 8192u

/* Largest encoded column payload: 8 bytes/value raw plus headroom for the
 * worst-case encoder expansion (exceptions lists, dictionary). */
#define QT_BLOCK_PAYLOAD_MAX (QT_BLOCK_POINTS_MAX * 18u + 4096u)

/* Largest decimal exponent e (and factor f <= e) of the float codec's ALP
 * encodings: v = d * 10^f * 10^-e.  10^18 is the largest power of ten below
 * 2^63, and 17 significant digits already pin down any double, so a larger
 * e never turns an exception into a decimal.  On-disk: decoders reject more. */
#define QT_FLT_EXP_MAX 18u

/* Longest frame-of-reference run of the float codec's ALP encodings (runs
 * are 2^k values, k = 7..10).  The decoder unpacks one run at a time into a
 * stack buffer of this many int64s (8 KiB); 1024 already makes the per-run
 * header cost < 0.03 bit/value, so longer runs would buy nothing. */
#define QT_FLT_RUN_MAX 1024u

/* Longest string value (status/event fields).  Long enough for an event
 * message, short enough that a block of them stays well under a megabyte;
 * longer text belongs in another system (DOMAIN.md #25). */
#define QT_STRING_VALUE_MAX 1024u

/* Distinct strings in one string block's dictionary.  Status fields have a
 * handful of states; beyond this the column is not "short strings". */
#define QT_STRING_DICT_MAX 4096u

/* Longest canonical series key (measurement, tags, field).  InfluxDB's
 * default max is 64 KiB per line; a key this long is a client bug. */
#define QT_SERIES_KEY_MAX 4096u

/* Tags per series.  The city hierarchy needs ~8 (district, street,
 * community, site, type, owner, ...); 64 leaves room without letting one
 * client build pathological keys. */
#define QT_TAGS_MAX 64u

/* Largest single WAL record (one write batch after encoding).  Bounds the
 * memory recovery needs to hold one record and the size of a torn tail. */
#define QT_WAL_RECORD_MAX (16u << 20)

/* Raw (pre-LZ4) payload of one block: presence column plus value column.
 * Sized so that every legal block fits -- 8192 strings of the maximum length
 * with a generous per-value codec overhead -- so the block encoder never
 * rejects legal input; storage cuts string blocks far smaller for latency.
 * Numeric blocks stay near QT_BLOCK_PAYLOAD_MAX. */
#define QT_BLOCK_RAW_MAX (QT_BLOCK_POINTS_MAX * (QT_STRING_VALUE_MAX + 16u) + 65536u)

/* Blocks listed in one segment's index.  A segment is one flush of one
 * shard: 1M series x a few blocks fits with room; more is a corrupt count. */
#define QT_SEGMENT_BLOCKS_MAX (16u << 20)

/* Live segments listed in one MANIFEST.  Ten years of daily shards with a
 * few hundred segments each before compaction; 4M entries is a 256 MiB
 * manifest, past which rewriting it on every flush would hurt. */
#define QT_MANIFEST_SEGMENTS_MAX (4u << 20)

/* ---- storage/ --------------------------------------------------------- */

/* Memtable lock stripes.  Groups map to a stripe by gid; 64 stripes keep the
 * chance that two ingest threads contend below 2% on a 64-core machine,
 * while a stripe array costs only a few KiB. */
#define QT_MEM_PARTITIONS 64u

/* Value columns (fields) in one column group.  Sensor lines carry a handful
 * of fields; 1024 admits wide industrial records without letting one group
 * make row appends quadratic (columns are found by a short scan). */
#define QT_GROUP_FIELDS_MAX 1024u

/* WAL file size at which the log starts a new file.  Small enough that
 * replay reads a file in one piece and old files are deleted promptly after
 * a flush; large enough that file creation (a directory fsync) is rare. */
#define QT_WAL_FILE_BYTES_DEFAULT (64ull << 20)

/* Bytes one group commit writes at most.  Bounds the latency of the writers
 * that wait on it and, with the rotation size, the size of a WAL file. */
#define QT_WAL_GROUP_BYTES_MAX (32u << 20)

/* Largest WAL file replay accepts: rotation size + one group + one record.
 * A larger file is not one qtdb wrote. */
#define QT_WAL_FILE_READ_MAX                                                                       \
    (QT_WAL_FILE_BYTES_DEFAULT + QT_WAL_GROUP_BYTES_MAX + QT_WAL_RECORD_MAX)

/* Longest "interval:MS" fsync period.  Beyond a minute the policy is "none"
 * in all but name; operators should say so explicitly. */
#define QT_FSYNC_INTERVAL_MAX_MS 60000u

/* Default memtable budget.  Bigger memtables mean bigger blocks (better
 * compression, fewer segments) at the price of memory and replay time;
 * 256 MiB holds ~20M points of city data, minutes to an hour of a node's
 * ingest, replayed in seconds. */
#define QT_MEM_BUDGET_DEFAULT (256ull << 20)

/* Flush a memtable whose oldest row is this old even if it is not full, so
 * WAL files are recycled and replay after a crash stays short. */
#define QT_FLUSH_AGE_DEFAULT_MS (10u * 60u * 1000u)

/* Default shard (time partition) length: one day.  Retention drops whole
 * shards and the city's reports are daily, so a day is the natural unit. */
#define QT_SHARD_DURATION_DEFAULT (86400ll * 1000000000ll)

/* Shards one flush may touch.  Late data after an outage spans a few days
 * at most; a memtable spanning more is flushed shard by shard anyway. */
#define QT_FLUSH_SHARDS_MAX 4096u

/* Blocks of one series a scan may hold decoded at once: blocks from
 * different segments whose time ranges overlap (late data flushed again and
 * again over the same hours before compaction merges them).  Each costs
 * ~250 KiB of buffers; 64 bounds a scan at ~16 MiB. */
#define QT_SCAN_SOURCES_MAX 64u

/* Bytes of a string value copied out of the last-value cache: the whole
 * value, since string values are bounded by QT_STRING_VALUE_MAX. */
#define QT_LC_STRBUF QT_STRING_VALUE_MAX

/* ---- storage/ops (compaction, retention, backup, verify, export) --------- */

/* Background compaction waits this long after a shard's newest segment
 * (and until the shard's time range has ended) before it merges the shard:
 * three default flush ages, so a shard still receiving late points is not
 * rewritten after every flush. */
#define QT_COMPACT_IDLE_DEFAULT_MS (30u * 60u * 1000u)

/* Longest sleep of the background operations thread; it wakes sooner (a
 * quarter of the idle time, at least QT_OPS_INTERVAL_MIN_MS) when the idle
 * time is short.  Retention and compaction are slow processes: a minute is
 * plenty. */
#define QT_OPS_INTERVAL_MS     60000u
#define QT_OPS_INTERVAL_MIN_MS 50u

/* Shards one background pass compacts; the rest wait for the next pass, so
 * close() and newer shards are not held up by a long backlog. */
#define QT_OPS_PASS_SHARDS_MAX 64u

/* Shards operated on at once (compactions + one retention pass's drops):
 * a small fixed set checked under a mutex. */
#define QT_OPS_BUSY_MAX 256u

/* Row blocks one compaction may hold decoded at once: blocks of one group
 * whose time ranges overlap (late data flushed again and again).  Each
 * costs ~(9 bytes x fields + 8) x QT_BLOCK_POINTS_MAX; beyond this many the
 * shard is pathological and the error says so. */
#define QT_COMPACT_SOURCES_MAX 1024u

/* Compaction reads its inputs whole into memory up to this total and maps
 * the rest (no read per block; memory stays bounded for huge shards). */
#define QT_COMPACT_INMEM_MAX (256ull << 20)

/* Free space kept beyond the inputs' size when compaction checks the disk
 * (file system metadata, the MANIFEST rewrite). */
#define QT_COMPACT_SPACE_MARGIN (16u << 20)

/* Retention rules per database: one per measurement or prefix; lookups scan
 * them linearly once per column group. */
#define QT_RETENTION_RULES_MAX 1024u

/* Rollup rules per database (storage/rollup.h): matched linearly once per
 * series per rollup run; 4 intervals each keep rollup series per raw
 * series bounded. */
#define QT_ROLLUP_RULES_MAX     256u
#define QT_ROLLUP_INTERVALS_MAX 4u

/* The query planner checks rollup currency shard by shard; a range over
 * more shards than this (~27 years of 1-day shards) simply reads raw. */
#define QT_ROLLUP_SPAN_SHARDS_MAX 10000u

/* The ROLLUPS record file: 16 bytes per shard, so 1 MiB is ~65k shards;
 * a bigger file is not ours (read whole, checksum-verified). */
#define QT_ROLLUP_FILE_MAX (1ull << 20)

/* Pieces (raw or rollup time ranges) one query plan may read. */
#define QT_ROLLUP_PLAN_PIECES_MAX 64u

/* The background thread rewrites a sealed single-segment shard to trim
 * points past retention only when at least 1/this of its points expired,
 * so a shard sliding out of retention is not rewritten every pass. */
#define QT_RETENTION_TRIM_FRACTION 8u
/* Backup ids (a UTC timestamp with an optional "-N" suffix) and the
 * relative paths a BACKUP file lists ("shards/<i64>/<20 digits>.qts" is 50
 * bytes): both far below their limits, which bound what a hostile BACKUP
 * file can make restore do. */
#define QT_BACKUP_ID_MAX   64u
#define QT_BACKUP_PATH_MAX 256u

/* Files one backup lists: every live segment plus the WAL files after the
 * checkpoint (64 MiB each: 4 TiB of un-flushed log is far beyond any
 * sane configuration), the MANIFEST and the catalog. */
#define QT_BACKUP_WAL_FILES_MAX 65536u
#define QT_BACKUP_FILES_MAX     (QT_MANIFEST_SEGMENTS_MAX + QT_BACKUP_WAL_FILES_MAX + 2u)

/* verify reads a file into memory up to this size and maps bigger ones, so
 * its memory stays bounded whatever the segment size. */
#define QT_VERIFY_INMEM_MAX (256ull << 20)

/* Threads verify uses (segments are checked in parallel, reads overlap
 * decoding): the target machines have few cores and verify shares them
 * with the server. */
#define QT_VERIFY_THREADS 2u

/* Export output buffer handed to the callback: big enough that a callback
 * writing to a pipe or socket does few syscalls, small next to a scan. */
#define QT_EXPORT_BUF_BYTES (64u << 10)

/* Copy unit of backup, restore and verify reads and writes: large
 * sequential transfers reach the disk's streaming speed. */
#define QT_OPS_COPY_BYTES (4u << 20)

/* ---- storage/io ----------------------------------------------------------- */

/* Default io_uring submission-queue entries per ring (the CQ gets twice as
 * many, the kernel default).  64 in flight covers one scan step's batch of
 * 4 KiB block reads; measured batches of 64 run at ~1 us per read from the
 * page cache, so deeper queues buy nothing there. */
#define QT_IO_QUEUE_DEPTH_DEFAULT 64u

/* Most SQEs per ring, and so most requests one call keeps in flight.  A few
 * hundred saturate an NVMe device; the per-call request window lives on the
 * stack (QT_IO_QUEUE_DEPTH_MAX x ~48 bytes = 12 KiB). */
#define QT_IO_QUEUE_DEPTH_MAX 256u

/* io_uring rings in one handle's pool (created lazily, one per thread that
 * finds the others busy).  8 covers WAL writer + flush + a few query
 * threads on small machines; the ceiling bounds fds and locked memory. */
#define QT_IO_URING_RINGS_DEFAULT 8u
#define QT_IO_URING_RINGS_MAX     64u

/* Requests in one qt_io_pread_batch/pwrite_batch call.  A scan reads a few
 * hundred blocks per step; beyond this the caller should stream. */
#define QT_IO_BATCH_MAX 4096u

/* Largest single read/write request.  A CQE result is an int32 and Linux
 * caps one transfer at 2 GiB - 4 KiB; 1 GiB keeps every request expressible
 * in one SQE and one syscall. */
#define QT_IO_REQ_BYTES_MAX (1u << 30)

/* Buffers in one qt_io_append_sync (a WAL group commit of that many record
 * buffers).  Linux IOV_MAX is 1024; the working copy is on the stack. */
#define QT_IO_IOV_MAX 256u

/* Resubmissions of one request after EINTR/EAGAIN or a zero-byte write
 * before its error is returned.  Short transfers that make progress do not
 * count: they end by themselves. */
#define QT_IO_RETRY_MAX 64u

/* io_uring_enter attempts on EAGAIN/EBUSY/ENOMEM, 100 us apart (~1 s),
 * before the process stops: requests already in flight write into caller
 * buffers, so returning an error with them outstanding would be unsafe. */
#define QT_IO_ENTER_RETRY_MAX 10000u

/* Unit of a torn write: a disk persists whole 512-byte logical sectors;
 * 4Kn devices tear at multiples of this, so 512 is the harsher model. */
#define QT_IO_SECTOR_BYTES 512u

/* Fault backend: unsynced bytes buffered in memory per handle (SQLite test6
 * style) before writes fail with QT_ELIMIT.  Tests must fsync; no real
 * engine test keeps this much undurable data. */
#define QT_IO_FAULT_PENDING_MAX (256u << 20)

/* ---- storage/catalog ---------------------------------------------------- */

/* Series (and groups) in one catalog.  Sids are u32; the design point is
 * 10M series per node at <= 200 bytes each (2 GB); 2^28 leaves 25x headroom
 * (~50 GB of catalog memory) while keeping every chunk directory small. */
#define QT_CATALOG_SERIES_MAX (1u << 28)

/* Seeds tried for a free series/group id before QT_ECOLLISION.  With 64-bit
 * ids a second try is already ~n/2^64 likely; 64 consecutive collisions mean
 * a broken hash (or a test hook), not bad luck. */
#define QT_CATALOG_REHASH_MAX 64u

/* Reader slots for the lock-free lookup table (one cache line each; threads
 * share a slot beyond this, which stays correct).  Covers ingest threads
 * plus query threads on the machines we target. */
#define QT_CATALOG_READER_SLOTS 64u

/* Log write buffer: ~1000 typical records per write(2); bounded so a failed
 * write loses at most this much unsynced catalog. */
#define QT_CATALOG_WRITE_BUF (64u << 10)

/* Replay read window: large sequential reads; must exceed the largest
 * record (QT_SERIES_KEY_MAX + 27). */
#define QT_CATALOG_READ_BUF (1u << 20)

/* Matchers in one selection and values in one IN list: far beyond any
 * dashboard query; bounds the work one request can ask for. */
#define QT_CATALOG_MATCHERS_MAX  64u
#define QT_CATALOG_IN_VALUES_MAX 65536u

/* Longest regex pattern in a selection (PCRE2 compile cost is linear). */
#define QT_CATALOG_REGEX_MAX 4096u

/* ---- server/ ingest parsers ------------------------------------------- */

/* Longest line-protocol or Graphite line, not counting its "\n" or "\r\n".
 * InfluxDB documents 64 KiB as its string-field limit and lines longer than
 * that are a client bug or an attack; a connection's read buffer must hold
 * one whole line, so this also sizes per-connection memory. */
#define QT_LINE_MAX 65536u

/* Fields in one line-protocol line.  A monitoring station reports tens of
 * quantities per reading; 256 leaves room while bounding the caller's point
 * struct (~10 KiB) and the per-line duplicate-key check, which is quadratic
 * in the worst case.  Also the fields of one write-batch line
 * (format/batch.h), i.e. the value columns of one column group: bounds its
 * fan-out (one value block per field) and the per-line decode work. */
#define QT_FIELDS_MAX 256u

/* Longest numeric literal (float, integer or timestamp text) in a line.
 * DBL_MAX written out in full ("%f") is 316 characters; 1 KiB leaves room for
 * leading zeros while keeping the slow exact-conversion path cheap on
 * hostile input. */
#define QT_NUMBER_TEXT_MAX 1024u

/* Graphite mapping templates in one configuration and the longest template
 * text.  Deployments use a handful (one per agent family); each template is
 * a short dotted pattern. */
#define QT_GRAPHITE_TEMPLATES_MAX 64u
#define QT_GRAPHITE_TEMPLATE_MAX  512u

/* Dotted parts in one template's filter or pattern.  collectd and Telegraf
 * paths have 4-8 components; a pattern can name at most a measurement, a
 * field and QT_TAGS_MAX tags, so 64 parts is already generous. */
#define QT_GRAPHITE_PARTS_MAX 64u

/* ---- server/ network, HTTP and query settings ------------------------- */
/* Defaults of operator settings (server/srvconf.c) and their ceilings.  The
 * reasons are the trade-offs an operator changing them should know. */

/* Line-protocol and Graphite TCP connections open at once (across both
 * ports).  One per gateway or agent: a city deployment has hundreds to a
 * few thousand.  An idle connection costs ~1 KiB, an active one up to one
 * line of carry-over (QT_LINE_MAX); each needs a file descriptor, so serve
 * raises RLIMIT_NOFILE's soft limit toward this.  Excess connections are
 * closed at accept and counted. */
#define QT_SRV_CONN_MAX_DEFAULT 10000u
#define QT_SRV_CONN_MAX_CEIL    1000000u

/* HTTP connections open at once.  The HTTP server runs a thread per
 * connection (a blocking durable write or a long query stalls only its own
 * client), so this bounds threads: 256 x (1 MiB stack, mostly untouched).
 * Per client address at most QT_SRV_HTTP_PER_IP_DEFAULT of them, so one
 * slow or hostile client cannot take every slot. */
#define QT_SRV_HTTP_CONN_DEFAULT   256u
#define QT_SRV_HTTP_CONN_CEIL      65536u
#define QT_SRV_HTTP_PER_IP_DEFAULT 64u
#define QT_SRV_HTTP_STACK_BYTES    (1u << 20)

/* A connection that sends nothing for this long is closed (TCP ingest and
 * HTTP keep-alive).  Telegraf and gateways reconnect transparently; 5 min
 * outlives any sane flush interval while reclaiming dead peers. */
#define QT_SRV_IDLE_TIMEOUT_DEFAULT_MS (300u * 1000u)

/* A started line-protocol line must be completed within this long, or the
 * connection is closed (the partial line is dropped).  A live client writes
 * a line in microseconds; a client trickling bytes holds a connection slot
 * and up to QT_LINE_MAX of carry-over memory for nothing. */
#define QT_SRV_SLOW_TIMEOUT_DEFAULT_MS (30u * 1000u)

/* Longest timeout setting: a day.  Beyond that it is "never" in disguise. */
#define QT_SRV_TIMEOUT_CEIL_MS (86400u * 1000u)

/* Largest HTTP /write body, before and after gzip decompression.  InfluxDB
 * 1.x defaults to 25 MB; clients batch 5,000-10,000 lines (~1 MB), so 32 MiB
 * only stops abuse (and gzip bombs: the decompressed size counts). */
#define QT_SRV_BODY_MAX_DEFAULT (32ull << 20)
#define QT_SRV_BODY_MAX_CEIL    (1ull << 30)

/* Lines one ingest thread hands to qt_db_write at once (and the size of its
 * batch arena).  A few thousand lines amortise the WAL group commit and the
 * engine's per-call work; more only adds latency and memory. */
#define QT_SRV_BATCH_LINES_DEFAULT 4096u
#define QT_SRV_BATCH_LINES_CEIL    65536u
/* Bytes of keys, field names and strings one batch may copy (arena). */
#define QT_SRV_BATCH_ARENA_BYTES (2u << 20)

/* Ingest (event loop) threads.  0 = one per online core. */
#define QT_SRV_THREADS_CEIL 256u

/* io_uring receive: provided buffers per loop and their size.  64 x 64 KiB
 * = 4 MiB per loop bounds what the kernel may receive for a loop thread
 * that is blocked on storage (backpressure), while one buffer holds ~700
 * city lines. */
#define QT_SRV_RECV_BUFS      64u
#define QT_SRV_RECV_BUF_BYTES (64u << 10)

/* Bad lines listed in one HTTP /write error body; the rest are counted.
 * A client that sends 10^5 bad lines needs the first few, not all. */
#define QT_SRV_BAD_LINES_LISTED 100u

/* Rate limit of per-line log messages (bad lines, rejected connections)
 * per call site and thread, per second. */
#define QT_SRV_LOG_PER_SEC 10u

/* Query limits (defaults; query/exec enforces them).  A dashboard query
 * touches hundreds of series and returns thousands of rows; these stop a
 * runaway query before it takes the node's memory or a core for minutes. */
#define QT_SRV_QUERY_DEADLINE_DEFAULT_MS 30000u
#define QT_SRV_QUERY_ROWS_DEFAULT        1000000ull
#define QT_SRV_QUERY_SERIES_DEFAULT      100000u
#define QT_SRV_QUERY_MEM_DEFAULT         (256ull << 20)
/* Longest query text accepted over HTTP (the q parameter or POST body). */
#define QT_SRV_QUERY_TEXT_MAX (64u << 10)
/* Largest buffered query response; a bigger result fails with an error
 * telling the client to narrow the query or add `| limit`. */
#define QT_SRV_QUERY_RESULT_MAX (256u << 20)
/* Verify findings listed in a /api/v1/verify response (the total is always
 * given): a badly damaged directory yields one finding per block, and the
 * response is buffered. */
#define QT_SRV_VERIFY_FINDINGS_MAX 10000u
/* Largest /api/v1/shards or /api/v1/verify response body. */
#define QT_SRV_OPS_REPLY_MAX (64u << 20)
/* Default --timeout of the CLI's --server operations (seconds between
 * bytes): a compaction or backup answers only when done. */
#define QT_CLI_OPS_TIMEOUT_S 3600
/* How long an export's writer waits for the client between checks of its
 * cancel flag (ms): bounds how long ending a request or the server waits. */
#define QT_SRV_EXPORT_POLL_MS 100

/* HTTP client (qtdb query/load): longest response head (status line and
 * headers) and chunk-size line; a server sending more is not qtdb. */
#define QT_HTTPC_HEAD_MAX       (64u << 10)
#define QT_HTTPC_CHUNK_LINE_MAX 256u

/* Current on-disk format version, written in every file header/footer.
 * Bump with any layout change and update DESIGN.md in the same commit. */
#define QT_FORMAT_VERSION 1u

/* ---- query/ ----------------------------------------------------------- */

/* Longest query text.  The longest realistic query is a selector with a
 * few hundred stations in an `in` list (~10 bytes each); 16 KiB holds that
 * with room while bounding lexing, parsing and error rendering work. */
#define QT_QUERY_TEXT_MAX 16384u

/* Nesting depth of the recursive-descent parser (Lua's enterlevel).  The
 * grammar reaches depth ~6 today; the guard turns any future recursive
 * rule into an error instead of a C stack overflow. */
#define QT_QUERY_DEPTH_MAX 32u

/* Stages after the selector.  The longest valid pipeline is a few `where`s,
 * one rate/delta, one aggregation, fill and limit; 16 leaves room for
 * several filters without letting a query become a program. */
#define QT_QUERY_STAGES_MAX 16u

/* Tag matchers in one selector.  The city hierarchy has ~8 levels plus
 * site, type and owner; 32 lets each be constrained more than once. */
#define QT_QUERY_MATCHERS_MAX 32u

/* Values in one `k in (...)` list.  A dashboard selecting every station of
 * a district sends a few hundred; each candidate series costs a lookup. */
#define QT_QUERY_IN_MAX 1024u

/* Longest regular expression (decoded bytes).  Bounds PCRE2 compile time
 * and compiled size; tag patterns are short alternations and prefixes. */
#define QT_QUERY_REGEX_MAX 1024u

/* Aggregation functions in one aggregation stage: the ten functions plus a
 * few percentiles.  Each is one result column. */
#define QT_QUERY_AGGS_MAX 16u

/* Tags in one `by` list: a series has at most QT_TAGS_MAX tags, so more
 * group-by tags than that cannot distinguish anything more. */
#define QT_QUERY_GROUP_TAGS_MAX QT_TAGS_MAX

/* Time buckets per group a bounded query may ask for (range / bucket).
 * Checked at parse time when the range is known; the executor checks
 * unbounded queries against the data.  2^20 is two years of minutes. */
#define QT_QUERY_BUCKETS_MAX (1u << 20)

/* Longest time-zone bucket in local days (`by 36500d tz "..."`): a
 * century; bounds the calendar arithmetic of qt_tz_bucket(). */
#define QT_QUERY_TZ_BUCKET_DAYS_MAX 36500u

/* Largest `limit N`.  A limit above a billion rows is no limit at all;
 * bounding it keeps the value well inside 32 bits. */
#define QT_QUERY_LIMIT_MAX 1000000000u

/* Longest number literal in a query (digits, point, exponent).  The
 * shortest round-trip form of any double is 24 characters. */
#define QT_QUERY_NUMBER_MAX 64u

/* Memory one parsed query may use in its arena (AST, strings).  A 16 KiB
 * query needs well under 256 KiB; the cap stops a pathological one. */
#define QT_QUERY_ARENA_MAX (1u << 20)

/* Error message buffer in struct qt_qry_error (bytes, with the NUL). */
#define QT_QUERY_ERROR_MAX 192u

/* Longest IANA time zone name.  The longest in tzdata is 32 bytes
 * (America/Argentina/ComodRivadavia). */
#define QT_TZ_NAME_MAX 64u

/* Largest TZif file read.  Real files are at most ~4 KiB (the biggest
 * "right/" zones); 64 KiB bounds the read and the parse. */
#define QT_TZIF_FILE_MAX 65536u

/* Transitions in one TZif data block.  tzdata's largest zone has 310
 * (fat files, transitions until 2037); 4x that leaves room for growth. */
#define QT_TZIF_TRANSITIONS_MAX 1200u

/* Local time types in a TZif file: a transition names its type in one
 * byte, so 256 is the format's own ceiling. */
#define QT_TZIF_TYPES_MAX 256u

/* Bytes of time zone abbreviations in a TZif file (tzdata uses <= 40). */
#define QT_TZIF_CHARS_MAX 256u

/* Longest POSIX TZ string in a TZif footer (tzdata's longest is 44:
 * Pacific/Chatham). */
#define QT_TZIF_FOOTER_MAX 128u

/* ---- query/ executor -------------------------------------------------- */

/* Default output rows of one query (struct qt_qry_limits.rows_max = 0).
 * Results stream, so rows cost no executor memory; the cap bounds the
 * bytes one request can make the server send (~50 MB of CSV).  Exports
 * that need more raise it per request. */
#define QT_QRY_ROWS_MAX_DEFAULT 1000000u

/* Default series one query may touch.  The design point is 1M active
 * series per node: a query over every series of a node is allowed, one
 * over a misconfigured selector on a bigger node is not. */
#define QT_QRY_SERIES_MAX_DEFAULT (1u << 20)

/* Default executor memory per query: aggregation cells (240 bytes per
 * group x bucket), percentile values (8 bytes each), group keys and the
 * selection.  256 MiB is a million group-buckets with room; raw points
 * never count (they stream). */
#define QT_QRY_MEM_MAX_DEFAULT (256ull << 20)

/* Default wall-clock budget of one query.  A day of a whole node's data
 * scans in seconds; a query running for minutes is a mistake that should
 * fail visibly rather than hold a server thread. */
#define QT_QRY_DEADLINE_DEFAULT_MS 30000u

/* Output buffer of the result writer: rows are encoded here and handed to
 * the sink when it fills, so the sink sees few large writes. */
#define QT_QRY_OUT_BUF_BYTES (64u << 10)

/* Rows (and bytes of cell text) the aligned table format holds back to
 * size its columns before printing the first row; later rows keep those
 * widths (a longer cell widens only its own row).  Bounds the table
 * writer's memory while real results (a few hundred rows) align fully. */
#define QT_QRY_TABLE_SAMPLE_ROWS  1024u
#define QT_QRY_TABLE_SAMPLE_BYTES (1u << 20)

/* Tag columns of a result that lists series (raw, last, episodes, gaps):
 * the union of the selected series' tag keys.  One measurement's series
 * share a handful; 4x QT_TAGS_MAX admits drifting tag sets while bounding
 * the row width. */
#define QT_QRY_TAG_COLUMNS_MAX (4u * QT_TAGS_MAX)

/* PCRE2 backtracking budget per tag value matched by a query regex: a
 * pathological pattern fails the query with QT_ELIMIT instead of pinning
 * a core (PCRE2's default is 10M; the catalog uses the same 1M). */
#define QT_QRY_REGEX_MATCH_LIMIT 1000000u

#endif
