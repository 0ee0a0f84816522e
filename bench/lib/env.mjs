// What bench/run.sh hands the harness, and the scale of each mode.
import path from 'node:path';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the harness through bench/run.sh`);
  return value;
}

export const env = {
  mode: process.env.BENCH_MODE ?? 'default',
  tmp: required('BENCH_TMP'),
  pghost: required('BENCH_PGHOST'),
  pgport: Number(required('BENCH_PGPORT')),
  pgdata: required('BENCH_PGDATA'),
  sinkPort: Number(required('BENCH_SINK_PORT')),
  tlsPort: Number(required('BENCH_TLS_PORT')),  // the same nginx over HTTPS (certificate: tmp/nginx/cert.pem)
  root: required('BENCH_ROOT'),
  results: required('BENCH_RESULTS'),
};
env.benchDir = path.join(env.root, 'bench');
env.pgbin = process.env.PG_BINDIR ?? '/usr/lib/postgresql/15/bin';

// Sizes and durations per mode. Every loop of the harness is bounded by
// these counts and by the deadlines derived from them.
const scales = {
  quick: {
    enqueueRounds: 7, enqueueSeconds: 2,
    drainEvents: 100_000, drainDeadlineS: 300, mixDrain: [117_000, 100_000],
    loadSeconds: 15, pruneDeadlineS: 150,
    claimPending: 100_000, claimSeconds: 3,
    latencyLowCount: 1000, latencyHighSeconds: 5, idleSettleS: 10, idleSeconds: 15,
    pollingDrainEvents: 20_000, fanoutEvents: 33_334, loadCatchUpS: 60,
    wrkSeconds: 3, microMinTime: 0.2,
    statsPending: 100_000, attemptsEvents: 50_000, attemptsPairs: 2, callbackEvents: 50_000, callbackPairs: 2,
    limitedEvents: 50_000, limitedPairs: 1,
    keyedDrains: [[1, 20_000], [10, 20_000], [100, 20_000], [10_000, 100_000]],
    latencyDrainEvents: 100_000,
    tlsEvents: 50_000, tlsPairs: 1,
    brokerEvents: 20_000,
    hostileEvents: 200,
  },
  default: {
    enqueueRounds: 15, enqueueSeconds: 3,
    drainEvents: 100_000, drainDeadlineS: 600, mixDrain: [117_000, 100_000],
    loadSeconds: 60, pruneDeadlineS: 300,
    claimPending: 1_000_000, claimSeconds: 5,
    latencyLowCount: 3000, latencyHighSeconds: 15, idleSettleS: 30, idleSeconds: 60,
    pollingDrainEvents: 50_000, fanoutEvents: 33_334, loadCatchUpS: 120,
    wrkSeconds: 5, microMinTime: 0.5,
    statsPending: 1_000_000, attemptsEvents: 100_000, attemptsPairs: 4, callbackEvents: 100_000, callbackPairs: 4,
    limitedEvents: 100_000, limitedPairs: 2,
    keyedDrains: [[1, 20_000], [10, 20_000], [100, 20_000], [10_000, 100_000]],
    latencyDrainEvents: 300_000,
    tlsEvents: 100_000, tlsPairs: 2,
    brokerEvents: 100_000,
    hostileEvents: 400,
  },
  full: {
    enqueueRounds: 21, enqueueSeconds: 4,
    drainEvents: 1_000_000, drainDeadlineS: 1800, mixDrain: [117_000, 100_000],
    loadSeconds: 60, pruneDeadlineS: 1500,
    claimPending: 1_000_000, claimSeconds: 10,
    latencyLowCount: 6000, latencyHighSeconds: 30, idleSettleS: 30, idleSeconds: 60,
    pollingDrainEvents: 100_000, fanoutEvents: 333_334, loadCatchUpS: 300,
    wrkSeconds: 10, microMinTime: 1,
    statsPending: 1_000_000, attemptsEvents: 300_000, attemptsPairs: 4, callbackEvents: 300_000, callbackPairs: 4,
    limitedEvents: 300_000, limitedPairs: 3,
    keyedDrains: [[1, 20_000], [10, 20_000], [100, 20_000], [10_000, 1_000_000]],
    latencyDrainEvents: 300_000,
    tlsEvents: 100_000, tlsPairs: 3,
    brokerEvents: 100_000,
    hostileEvents: 1000,
  },
};
export const scale = scales[env.mode] ?? scales.default;

// The ~100-byte payload every producer sends.
export const PAYLOAD =
  '{"order_id": 123456, "customer": "c-98765", "total": 99.50, "currency": "EUR", "items": 3, "channel": "web"}';
