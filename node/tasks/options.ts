import { z } from 'zod'
import { DEFAULT_MAX_INPUT_BYTES } from '../../protocols/gossip/constants.js'
import { MAX_LEASE_MS, MAX_WAIT_MS } from '../../protocols/lease/index.js'
import { MAX_TASK_TIMEOUT_MS, MAX_TIMER_MS, byteLength } from '../../protocols/task/schema.js'
import { DEFAULT_VOTE_SIGN_BATCH_MAX, MAX_SIGN_BATCH } from '../../protocols/task/vote-batch.js'
import { InvalidConfigError } from '../errors.js'
import type { Agent } from '../runtime/agent.js'
import type { TaskRecord } from '../../protocols/task/record.js'
import type { Embed } from '../memory/memory-layer.js'

export { MAX_TIMER_MS }
const count = (min: number) => z.number().int().min(min)
/** the largest input or result a node may be set to take: 64 MiB (1e12 was accepted, and every frame limit followed it) */
const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
/** The longest duration compared with clocks: ten years, far from where `now + it` loses precision. */
const MAX_CLOCK_MS = 10 * 365 * 24 * 3600_000
/** A deadline a task may be given: a year, as the API's `deadlineMs`. */
export const MAX_DEADLINE_MS = 365 * 24 * 3600_000
/** A duration compared with clocks (an age, a window). */
const clockMs = (min = 1) => count(min).max(MAX_CLOCK_MS, `at most ${MAX_CLOCK_MS} (ten years)`)
const ms = clockMs()
/** A timer of another section of the daemon's config file (network, llm, doors...), in ms, optional there. */
export const optionalTimerMs = (min: number, max = MAX_TIMER_MS): z.ZodOptional<z.ZodNumber> => z.number().int().min(min).max(max).optional()
/** A duration a timer waits. */
const timerMs = (min = 1, minMessage?: string) => z.number().int().min(min, minMessage).max(MAX_TIMER_MS, `at most ${MAX_TIMER_MS} (the longest a timer can wait)`)

/**
 * Every timer and limit of the task layer, with its default. This one schema is the type
 * (`TaskLayerInit`, `TaskLayerOptions`), the resolver (`resolveTaskOptions`) and the check of the
 * daemon config file's `tasks` object, so a new option is added here and nowhere else. Tests
 * shrink the timers; the defaults suit a real mesh. Unknown keys are rejected.
 */
export const taskOptionsSchema = z.strictObject({
  /** peers per replica set. @default 3 */
  replicationFactor: count(1).max(15).default(3),
  /**
   * Random nonces a submit tries for a task id whose placement includes this node, when this node
   * will run the task itself (it offers the capability and has a free slot, and the submit has no
   * idempotency key, which fixes the id). Such a task is claimed with its store, one request per
   * member, instead of handed to a member that runs it and reports back: a task's work then does
   * not grow with the mesh. The placement is still the R nearest members by XOR distance to the
   * id. Off by default: the other members are then the submitter's XOR neighbours, so a crash
   * of a holder and the loss of its neighbour block many tasks at once (the simulator's crash
   * scenario once blocked two; spread placements never more than one). 1: no tries, the first id
   * stands; 32 is what the bench measured. @default 1
   */
  ownPlacementTries: count(1).max(1024).default(1),
  /**
   * at least 100: a shorter lease lapses before a claim's round trips and fsyncs are done, so no
   * task could finish; at most an hour, the longest a member grants (a longer one was refused by
   * every member, the node's own included, so nothing could be claimed). @default 10_000
   */
  leaseMs: z.number().int().min(100, 'at least 100 (--lease-ms; a shorter lease lapses before a claim\'s round trips end)').max(MAX_LEASE_MS, `at most ${MAX_LEASE_MS} (an hour: the longest lease a member grants)`).default(10_000),
  /**
   * a lease is renewed after this fraction of it; it must leave at least MIN_RENEW_MARGIN_MS of the
   * lease for the renewal's round trips (0.999 of a 1 s lease renewed 1 ms before the end, and every
   * task longer than a lease lost it). @default 1/3
   */
  renewFraction: z.number().gt(0).lt(1).default(1 / 3),
  /** first retry delay after a failed attempt. @default 1_000 */
  backoffBaseMs: timerMs().default(1_000),
  /** @default 60_000 */
  backoffCapMs: timerMs().default(60_000),
  /** @default 3 */
  defaultMaxAttempts: count(1).max(100).default(3),
  /** per attempt; at most 7 days, as a submit's timeoutMs. @default 60_000 */
  defaultTimeoutMs: timerMs().max(MAX_TASK_TIMEOUT_MS, `at most ${MAX_TASK_TIMEOUT_MS} (7 days, as a submit's timeoutMs)`).default(60_000),
  /** how long ctx.waitFor waits for its signal when the agent names no timeout. @default 86_400_000 (a day) */
  defaultWaitMs: ms.max(MAX_WAIT_MS).default(86_400_000),
  /**
   * A subtask that completed but whose result no replica gave yet (it is on its way to them) is
   * asked for again for this long, from the first wait that saw it completed; then it fails its
   * parent's attempt. About what ten tries, each a 5 s wait, gave before it was an option.
   * @default 50_000
   */
  subtaskResultWaitMs: timerMs(0).default(50_000),
  /** a task unclaimed or unfinished this long after submit goes dead. @default 86_400_000 (a day) */
  defaultDeadlineMs: ms.max(MAX_DEADLINE_MS, `at most ${MAX_DEADLINE_MS} (a year, as a submit's deadlineMs)`).default(86_400_000),
  /**
   * A submit stamps its task's creation time and deadline by the mesh's clock (the median of this
   * node's and its live peers', see PresenceService.clockOffset) when this node's own differs from it by more
   * than this; within it, by the later of the two. A node an hour behind stamped deadlines the
   * members, who judge them by their clocks, took as passed, and its tasks went dead unclaimed.
   * @default 30_000
   */
  clockSkewToleranceMs: ms.default(30_000),
  /** at most 64 MiB: an input travels whole in one frame to each member. @default 1_048_576 (1 MiB) */
  maxInputBytes: count(1024).max(MAX_PAYLOAD_BYTES).default(DEFAULT_MAX_INPUT_BYTES),
  /** @default 1_048_576 (1 MiB) */
  maxResultBytes: count(1024).max(MAX_PAYLOAD_BYTES).default(1_048_576),
  /** results up to this ride in completion notices. @default 16_384 */
  maxInlineResultBytes: count(0).default(16_384),
  /**
   * A peer silent for presenceExpiryIntervals intervals drops out. Every peer floods one presence message per
   * interval, and handling them was most of an idle daemon's CPU at 2 s.
   * @default 5_000
   */
  presenceIntervalMs: timerMs().default(5_000),
  /**
   * The least time between two of this peer's early announcements of a capability going full or
   * free. Under load slots fill and free many times a second, and each flip was a message every
   * peer checked: more than one per task.
   * @default 1_000
   */
  presenceEarlyGapMs: timerMs(0).default(1_000),
  /** a peer silent for this many presence intervals drops out of this node's view. @default 3 */
  presenceExpiryIntervals: count(2).max(100).default(3),
  /** each rank of the rendezvous order waits this much longer before claiming. @default 150 */
  claimStaggerMs: timerMs(0).default(150),
  /** how many of the first-ranked capable peers claim an announced task. @default 3 */
  claimRanks: count(1).default(3),
  /**
   * After a claim of a task fails, this node waits before it claims that task again: between this
   * and twice this after the first failure, doubling with each further one (the lower bound stops
   * at a lease). Two claimants that split a placement's grants both fail; retrying in step they
   * split it again.
   * @default 250
   */
  claimRetryBaseMs: timerMs(1).default(250),
  /**
   * The first this-many ranked peers keep an announced task in their store, so that a later claim
   * there finds it; the others drop the announcement without a store read (any node still answers
   * for the task through its replicas). Such copies cost no sweep: they are only read from their
   * placement now and then, to settle.
   * @default 8
   */
  keepRanks: count(1).default(8),
  /**
   * A node whose event loop ran this late in the last second or two takes no new claims: it might
   * not renew them in time. The pull path and re-announcements bring the tasks back later. A node
   * that runs nothing still takes one at a time while the lag is under half of what a lease
   * survives (leaseMs × (1 − renewFraction)): a mesh whose every node lags must not stop.
   * @default 1_000
   */
  claimLagLimitMs: ms.default(1_000),
  /**
   * How often the event loop's lag is sampled. Each sample wakes the process: every 20 ms was half a
   * percent of a core on an idle node, and every 100 ms half of an idle daemon's wake-ups. A stall
   * shorter than one sample can fall between two samples and go unseen; a longer one is read as at
   * least its length less one sample (a stall of claimLagLimitMs plus one sample always counts).
   * At most a second, the window lag is read over. A process running several nodes (tests, the
   * simulator) samples at the rate of the first that started.
   * @default 250
   */
  lagSampleMs: timerMs(10).max(1_000, 'at most 1000 (lag is read over windows of a second)').default(250),
  /**
   * Offers a busy node keeps, when it is the last peer a submitter asks, to claim as its slots free
   * up, oldest task first; past this it declines, and the task waits on its placement for a
   * re-announcement or a pull, unless it is older than the youngest kept, whose place it takes.
   * @default 256
   */
  offerQueueLimit: count(0).default(256),
  /**
   * Tasks a node submits (or is handed) while every slot of their capability is busy and no other
   * peer has one free, leased with their store (one request per member, where storing and claiming
   * later is two) to run here as slots free: at most this many times the agent's concurrency wait
   * per capability, each until its lease's first renewal at most, so a slow agent does not hoard
   * tasks peers could run once their slots free. 0: none; such tasks are stored and offered. Off by
   * default: a holder that crashes, or freezes past the lease, while a task waits costs that task an
   * attempt it never ran (its members cannot tell a wait from a run), and its gain between daemons
   * was within the spread of the bench.
   * @default 0
   */
  claimAheadPerSlot: count(0).max(64).default(0),
  /**
   * The longest a pure agent's run before its claim may take (Agent.pure); past it (or its task's
   * timeoutMs) the task is claimed and run the usual way. Kept short: the submit, and a handoff's
   * submitter (handoffTimeoutMs), wait for it. @default 1_000
   */
  prerunMaxMs: timerMs().default(1_000),
  /**
   * How long a claim that carries its vote, once a majority granted, waits for a majority of votes
   * before it takes the grants alone and asks for the votes after (a member that grants without
   * voting, another that is silent). @default 100
   */
  prerunVoteWaitMs: timerMs().default(100),
  /**
   * A holder whose vote on its result, durable step, wait or failure report fell short of a majority because
   * members did not answer (a link down for a moment, a request timed out) asks those again after
   * this, then twice as long each time, while its lease lasts: before, the attempt failed though the
   * run was within its lease, and a task with one attempt died of it. @default 250
   */
  askAgainMs: timerMs().default(250),
  /**
   * Runs whose agent returned and whose outcome is still on its way to a majority (votes, commit),
   * each with its slot already given back so that the next task starts meanwhile. Past this many on
   * a node (all agents together), a run keeps its slot until its outcome is reported: when the
   * placements answer slowly, the results reports hold (up to maxResultBytes each) do not pile up in
   * memory without bound. 0: every run keeps its slot until its outcome is reported.
   * @default 64
   */
  maxPendingReports: count(0).default(64),
  /**
   * How long an agent has to return once its run's signal aborts (its timeoutMs passed, the task was
   * canceled, the lease was lost) before the run is ended without it: the attempt ends as the abort
   * says, the lease is given back or let go, and the slot frees. The agent's promise is left to
   * settle unheeded. An agent that ignored its signal (a call made without it, a promise that never
   * settles) kept its task running, its lease renewed, and its slot taken, for good.
   * @default 5_000
   */
  abortGraceMs: timerMs().default(5_000),
  /**
   * Unfinished tasks of the placements a node is a member of (wherever submitted; copies it keeps
   * as a non-member do not count) before it refuses new submits with OverloadedError (HTTP 429 with
   * Retry-After): past what the mesh runs, the backlog waits on disk and in each member's index of
   * active tasks, and this bounds both. Subtasks an agent submits are not refused (that would fail
   * their parent's attempt); nor are redrives.
   * @default 50_000
   */
  maxUnfinishedTasks: count(1).default(50_000),
  /**
   * Submit requests (one task, or one bulk) this node stores on their placements at once before it
   * refuses more with OverloadedError (HTTP 429 with Retry-After), cheaply and at once. Offered
   * 1,000 requests a second, a node took them all: each waited on its placement's members, RPCs
   * timed out into 503s, and the listen queue overflowed into resets and minute-long hangs.
   * Subtasks are not refused. @default 256
   */
  maxSubmitsInFlight: count(1).default(256),
  /** what a refused client is told to wait before it retries (Retry-After of a 429 or 503). @default 1_000 */
  retryAfterMs: timerMs().default(1_000),
  /**
   * How long a submitter waits for a member it handed a new task to (to claim and run it) before it
   * stores and offers the task itself. The answer comes after one round of acquires, which gives up
   * after a third of the lease when a majority is slow: longer than that at the default lease, so a
   * member that is only slow is not offered around. A silent one is suspected sooner
   * (handoffSuspectMs): taken as full, and the task handed to another member as well.
   * @default 5_000
   */
  handoffTimeoutMs: timerMs().default(5_000),
  /**
   * A member from which no answer came this long (to the handoff, nor to any other lease or
   * records request) is taken as full (for the task's capability, until its next presence) and the
   * task is handed to the next member with a free slot as well (whichever gets a majority's grants
   * runs it): the submits after it, and this one, go to another member, where they had all waited
   * on a paused peer until the first timeout. A member that answered something meanwhile is slow,
   * not paused: taken as full, and its answer awaited up to handoffTimeoutMs. At least
   * prerunMaxMs, which a pure agent's run before the claim may take; at most handoffTimeoutMs.
   * @default 1_500
   */
  handoffSuspectMs: timerMs().default(1_500),
  /**
   * A read that a majority of the members answered without a copy (a new idempotency key's
   * lookup, a read that may answer 404) waits for the other members' answers, as one of them may
   * hold the only copy, but not past this long with nothing heard from a member, counted from the
   * read's request or the last thing heard from it (paused, or cut off): a paused member held
   * each such read up to rpcTimeoutMs. A member so found silent, and heard from nothing since, is
   * waited for a sixth of this by the next such reads. Such a read waits at most rpcTimeoutMs.
   * So do the reads of a task's whole history that an event stream and a trace make.
   * @default 1_500
   */
  silentPeerMs: timerMs().default(1_500),
  /** how often a node asks peers for claimable tasks it has not seen. @default 2_000 */
  pullIntervalMs: timerMs().default(2_000),
  /**
   * A pull that asked and found nothing doubles the wait to the next, up to this (never below
   * pullIntervalMs); a pull that finds a task, an announcement or offer seen, or a pull skipped for
   * want of a free slot brings it back to pullIntervalMs. The pull path is a fallback for dropped
   * gossip (the placement offers its tasks again anyway): at 5 idle daemons pulls were a sixth of
   * their CPU. The cost: a task whose gossip and offers were all lost waits up to this for a pull.
   * Equal to pullIntervalMs: no back-off. @default 16_000
   */
  pullIntervalCapMs: timerMs().default(16_000),
  /**
   * A pull that left claimable tasks of a capability behind (it found more than this node had free
   * slots for, or an answer was cut at the limit asked), and that this node is claiming some of:
   * until a pull finds no more than it can take, a slot of that capability that frees (a run's end,
   * a refused claim) brings the next pull to within this, not pullIntervalMs (not while the event
   * loop lags: claims are deferred then). Such tasks (a dead submitter's, back on their placements)
   * drained at a pull's worth of free slots every two seconds, about 20 a second for 16 slots of
   * 100 ms tasks. Also the soonest a pull comes back for a task it left out as younger than
   * pullMinAgeMs. 0: at once. @default 50
   */
  pullAgainMs: timerMs(0).default(50),
  /** peers asked per pull. @default 2 */
  pullPeers: count(0).default(2),
  /** the pull path takes tasks unchanged for this long: younger ones are the announcements' to claim. @default 2_000 */
  pullMinAgeMs: clockMs(0).default(2_000),
  /** @default 1_000 */
  sweepIntervalMs: timerMs().default(1_000),
  /** first re-announcement of an unclaimed task; doubles up to reannounceCapMs. @default 2_000 */
  reannounceBaseMs: timerMs().default(2_000),
  /** @default 60_000 */
  reannounceCapMs: timerMs().default(60_000),
  /**
   * How many re-announcements of an unclaimed task go as offers, to the few capable peers with a
   * free slot in its claim order (a request each, members of its placement first), before the next
   * ones go to the capability's whole topic by gossip. A gossiped task is checked by every capable
   * peer: 50 nodes offered 100 tasks/s saw 60 announcements a task. An offer every peer asked
   * declines is gossiped at once; gossip also reaches a peer this node's presence view missed, and a
   * task taken and not run. A failed attempt's retry counts from none again. 0: every
   * re-announcement is gossiped. @default 2
   */
  reannounceOffers: count(0).max(1_000).default(2),
  /**
   * A dead letter this node keeps outside its placement is read from the placement a lease after
   * it died, then with backoff doubling up to this: a redrive elsewhere reaches it by a notice
   * only, which gossip may drop. @default 3_600_000
   */
  deadCopyRefreshCapMs: timerMs().default(3_600_000),
  /** a request to a peer, from its dial to its answer. @default 5_000 */
  rpcTimeoutMs: timerMs().default(5_000),
  /**
   * Requests of one peer (on one protocol: leases, records) this node handles at once; past them
   * it reads no more of that peer's requests until one is answered, so the peer's writes wait.
   * @default 32
   */
  rpcMaxConcurrentHandlers: count(1).max(1_024).default(32),
  /**
   * Requests in a row to a peer that time out, with nothing heard from it between them, after which
   * the stream to it is torn down and the next request opens another. @default 2
   */
  rpcMaxConsecutiveTimeouts: count(1).max(100).default(2),
  /**
   * Votes one Ed25519 signature covers at most: a member signs the votes it cast in one turn of the
   * event loop together, over a Merkle tree of their statements; 1 signs each vote alone. 16 saves
   * most of a loaded daemon's signatures; off by default for the wait it adds (vote-batch.ts).
   * @default 1
   */
  voteSignBatchMax: count(1).max(MAX_SIGN_BATCH).default(DEFAULT_VOTE_SIGN_BATCH_MAX),
  /** finished tasks whose state (and result) a node keeps in memory after their commit, most recent first. @default 4_096 */
  recentFinished: count(0).max(1_000_000).default(4_096),
  /** the bytes of results those may hold. @default 33_554_432 (32 MiB) */
  recentFinishedBytes: count(0).max(MAX_PAYLOAD_BYTES * 64).default(32 * 1024 * 1024),
  /**
   * A wait for a result (`submit --wait`, GET /v1/tasks/:id?wait) wakes on the completion notice,
   * and asks the replicas after this long in case the notice was lost; doubles up to waitPollCapMs.
   * @default 1_000
   */
  waitPollBaseMs: timerMs().default(1_000),
  /** @default 8_000 */
  waitPollCapMs: timerMs().default(8_000),
  /**
   * A wait that has a task's final state but not its result (the holder's commit on its way) asks
   * the placement again after this long, doubling up to the poll's own interval.
   * @default 50
   */
  resultFollowMs: timerMs().default(50),
  /**
   * Waits on other nodes a member remembers, to tell each when the task's final state is stored
   * (a node waiting on a task it did not submit asks a member to). Past this the oldest are
   * forgotten: those waits wake on their next poll instead.
   * @default 10_000
   */
  remoteWaitersLimit: count(0).default(10_000),
  /**
   * Tasks the sweeper's recovery decides, and the placement check moves, at a time. Each may wait
   * `rpcTimeoutMs` on a member that is paused: one at a time, a paused member held a round up by
   * that long for every task it shares.
   * @default 16
   */
  recoveryConcurrency: count(1).default(16),
  /**
   * What the first live member of a task's placement does (decide it, re-announce it) the member of
   * live rank k does once the task has waited k times this long for it: a first member that is live
   * but does not act on the task (its copy unreadable on disk) held it up for ever. Not moves.
   * @default 120_000
   */
  backupAfterMs: timerMs().default(120_000),
  /**
   * The same wait, when shorter, for a task whose only reason to be decided is its passed deadline.
   * Each member reads the deadline by its own clock, so a first member whose clock runs behind held
   * the death back by its skew, up to backupAfterMs (2 minutes), while the others saw it due. Three
   * times rpcTimeoutMs: a round of up to 48 due tasks (16 at a time, each of which may wait
   * rpcTimeoutMs on a paused member) is not backed up; a larger one may be, at a cost in messages only.
   * @default 15_000
   */
  deadlineBackupMs: timerMs().default(15_000),
  /** how often records are compared with the other replicas and handed to moved replica sets. @default 30_000 */
  antiEntropyIntervalMs: timerMs().default(30_000),
  /**
   * An unfinished record changed within this long is compared by anti-entropy only for presence (a
   * member that lacks it gets it), not for content: the task's own requests are still bringing
   * its members together, and under load comparing records in flux pushed nearly three records
   * per task between members for nothing.
   * @default 10_000
   */
  antiEntropyMinAgeMs: ms.default(10_000),
  /**
   * Completed tasks this member holds without their result that an anti-entropy round asks the
   * other members about (normally none; each costs a read of one or two members). @default 64
   */
  resultRepairsPerRound: count(0).max(10_000).default(64),
  /** completed and canceled records (and dropped dead letters) are deleted this long after they ended. @default 604_800_000 (7 days) */
  retentionMs: ms.default(7 * 24 * 3600_000),
  /**
   * Peers seen within this window count as mesh members when a task's placement is chosen. The
   * membership is kept on disk, so a restarted node still knows the peers it saw.
   * @default 600_000 (10 minutes)
   */
  membershipWindowMs: ms.default(600_000),
  /** a placement member unreachable this long may be replaced by an epoch change. @default 120_000 (2 minutes) */
  placementMoveAfterMs: ms.default(120_000),
  /**
   * Tasks whose streamed progress (tokens of llm.chat, say) a submitter keeps for its listeners,
   * and an executor for `GET /v1/tasks/:id` of the tasks it ran; past it the task heard from least
   * recently (run longest ago) is forgotten.
   * @default 1_000
   */
  progressTasks: count(1).default(1_000),
  /** recent progress events kept per task (by the submitter and the executor), replayed to a listener that subscribes late. @default 256 */
  progressEventsPerTask: count(1).default(256),
  /**
   * An event stream of one task (GET /v1/tasks/:id/events) on a node that is not told of each
   * attempt reads the task's record from its placement this often.
   * @default 1_000
   */
  eventsPollMs: timerMs().default(1_000),
  /**
   * The mesh's state changes come from several peers: a task's submitter tells it is pending, the
   * peer that runs it that it is running, and they can arrive the other way round. A stream of
   * GET /v1/events holds a task's change for up to this long while its pending is not there yet.
   * @default 250
   */
  watchReorderMs: timerMs(0).default(250),
  /**
   * Progress events a running node holds for one submitter while a send to it is under way; past
   * it the oldest are dropped (the submitter sees a gap). @default 4_096
   */
  progressQueueLimit: count(1).default(4_096),
  /**
   * Vector memory: records of one collection on a peer up to this many are searched exactly
   * (every true neighbour; 8 ms for 100,000 of 384 dims here, growing linearly); past it an HNSW
   * index answers, whose memory and build cost only pay off at that size. @default 250_000
   */
  memoryHnswAbove: count(0).default(250_000),
  /**
   * Vector memory on a node without an embeddings model: its texts are embedded by a peer that has
   * one, as `memory.embed` tasks, each waited for this long (also their deadline).
   * @default 120_000
   */
  remoteEmbedWaitMs: timerMs().default(120_000),
  /**
   * A stopping node waits this long, at most, for the grants that came after their claims ended to
   * be given back (and for the answers to its last claims): without it such a grant stayed live on
   * its member until it lapsed, and the member refused every other claim on the task meanwhile.
   * @default 1_000
   */
  stopGiveBackMs: timerMs(0).default(1_000),
  /** a stopping node waits this long, at most, for its claims in flight to end. @default 2_000 */
  stopClaimGraceMs: timerMs(0).default(2_000),
  /** fsync writes peers rely on. @default true */
  syncWrites: z.boolean().default(true)
}, {
  error: iss => iss.code === 'unrecognized_keys' ? iss.keys.map(unknownKey).join('; ') : undefined
})

function unknownKey (key: string): string {
  const near = Object.keys(taskOptionsSchema.shape).find(known => editDistance(key.toLowerCase(), known.toLowerCase()) <= 2)
  return `unknown task option "${key}"${near === undefined ? '' : ` (did you mean "${near}"?)`}`
}

function editDistance (a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    row = next
  }
  return row[b.length]!
}

/** Every timer and limit of the task layer, each optional (its default is in taskOptionsSchema). */
export type TaskLayerInit = z.input<typeof taskOptionsSchema> & {
  /** not JSON, so not in the schema (nor in a config file). @default all built-in agents */
  agents?: Agent[]
  /** texts to vectors for vector memory (an OpenAI-compatible /v1/embeddings); none: callers give vectors */
  embed?: Embed
  /** tasks an agent runs at once, by agent name, over the agent's own `concurrency` (the daemon's config `concurrency`) */
  concurrency?: Record<string, number>
}

/** The resolved options: every field present. */
export type TaskLayerOptions = z.output<typeof taskOptionsSchema>

/** Every default, for display and for tests. */
export const TASK_OPTION_DEFAULTS: Readonly<TaskLayerOptions> = Object.freeze(taskOptionsSchema.parse({}))

/**
 * Options that bound each other: [the lesser, the greater]. A base past its cap was taken without
 * a word, and the cap won. (pullIntervalMs past pullIntervalCapMs is no contradiction: the pulls
 * then keep that interval, with no backoff.)
 */
const ORDERED_OPTIONS: Array<[keyof TaskLayerOptions, keyof TaskLayerOptions]> = [
  ['backoffBaseMs', 'backoffCapMs'],
  ['reannounceBaseMs', 'reannounceCapMs'],
  ['waitPollBaseMs', 'waitPollCapMs'],
  ['maxInlineResultBytes', 'maxResultBytes'],
  // a pure agent's run before its claim is no silence; a suspicion after the timeout never comes
  ['prerunMaxMs', 'handoffSuspectMs'],
  ['handoffSuspectMs', 'handoffTimeoutMs']
]

/** What a renewal must have left of its lease: a majority's round trips and fsyncs, on a loaded machine. */
export const MIN_RENEW_MARGIN_MS = 50

/** The options that contradict each other, each as `lesser (value) is above greater (value)`; none: []. */
export function contradictoryTaskOptions (o: TaskLayerOptions): string[] {
  const found = ORDERED_OPTIONS.filter(([lesser, greater]) => (o[lesser] as number) > (o[greater] as number))
    .map(([lesser, greater]) => `${lesser} (${String(o[lesser])}) is above ${greater} (${String(o[greater])}): it must be at most that`)
  const margin = o.leaseMs * (1 - o.renewFraction)
  // 500 × (1 − 0.9) is 49.99...: the tolerance takes it as the 50 it is
  if (margin < MIN_RENEW_MARGIN_MS - 1e-6) found.push(`renewFraction (${o.renewFraction}) of leaseMs (${o.leaseMs}) renews ${Math.round(margin)} ms before the lease ends: it must leave at least ${MIN_RENEW_MARGIN_MS} ms for the renewal`)
  return found
}

/** Fills in the defaults and checks every value; a bad value is an InvalidConfigError naming it. */
export function resolveTaskOptions (init: TaskLayerInit): TaskLayerOptions {
  const { agents: _agents, embed: _embed, concurrency: _concurrency, ...options } = init
  const parsed = taskOptionsSchema.safeParse(options)
  if (!parsed.success) {
    throw new InvalidConfigError(`task options: ${parsed.error.issues.map(i => i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message).join('; ')}`)
  }
  const contradictions = contradictoryTaskOptions(parsed.data)
  if (contradictions.length > 0) throw new InvalidConfigError(`task options: ${contradictions.join('; ')}`)
  return parsed.data
}

/** The largest frame the lease and records protocols read: a task's input and result, and room for the rest. */
export function rpcFrameBytes (o: Pick<TaskLayerOptions, 'maxInputBytes' | 'maxResultBytes'>): number {
  return o.maxInputBytes + o.maxResultBytes + 64 * 1024
}

/**
 * What a task's input, journal steps and signals' data may hold together: it leaves 32 KiB of a
 * frame, beside the result, for the rest of the record (its attempts, with errors of up to 4 KiB
 * each, and its placements). A journal step or a signal past it is refused; unbounded, a journal
 * made the record one no peer could be sent (a put, a move or a repair of it failed). Attempts are
 * not bounded by it: a task retried and redriven many times can still outgrow a frame.
 */
export function maxRecordBytes (o: Pick<TaskLayerOptions, 'maxInputBytes'>): number {
  return o.maxInputBytes + 32 * 1024
}

/** A record's input and journal (steps and signals' data): what maxRecordBytes bounds. */
export function journalBytes (record: Pick<TaskRecord, 'task' | 'journal'>): number {
  return byteLength(record.task.input) + byteLength(record.journal ?? {})
}
