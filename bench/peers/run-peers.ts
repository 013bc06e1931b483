// The peers' part of a sweep (bench/load/cli.ts calls it after our server has been swept and
// stopped): make or find the Python venv and the ONNX file, then for each peer start it, drive
// rest-raw at our concurrencies and our open-loop rates, stop it, and compare with ours.
// A peer that cannot run is reported, loudly, and the rest of the bench goes on.
import path from 'node:path';
import type { RepositoryChoice } from '../load/model-repo.ts';
import type { Payloads } from '../load/requests.ts';
import { REPO_ROOT } from '../load/server-process.ts';
import {
  comparePeer, openRates, runPeerSweep, summarizeKinds,
  type KindSummary, type PeerEnvironment, type PeerRun, type PointResult, type SweepContext,
} from '../load/sweep.ts';
import { compareAnswers } from './answer-check.ts';
import { peerModel } from './onnx-model.ts';
import { PEER_LABELS, startPeer, type PeerName } from './peer-process.ts';
import { ensurePeerPython, PeerPythonUnavailable } from './python-env.ts';

export interface PeerPlan {
  peers: PeerName[];
  model: string;
  repo: RepositoryChoice;
  payloads: Payloads;
  /** Our rest-raw points and summary from this run. */
  ours: { points: PointResult[]; summary: KindSummary | undefined; answer: unknown };
  concurrencies: number[];
  /** Sweep settings shared with ours (everything but the target). */
  sweep: Omit<SweepContext, 'server' | 'peer' | 'payloads'>;
  cpus: number;
  threads: number;
  maxBatch: number;
  batchWaitMs: number;
  maxOngoing: number;
  readyTimeoutMs: number;
  logDir: string;
  pinCpus?: string;
  basePython?: string;
  log(line: string): void;
}

export interface PeersResult {
  runs: PeerRun[];
  environment?: PeerEnvironment;
  skipped?: string;
}

/** Prints a message nobody can miss in a long bench log. */
function loud(log: (line: string) => void, message: string): void {
  const bar = '!'.repeat(78);
  log(`\n${bar}\n${message.split('\n').map((l) => `!! ${l}`).join('\n')}\n${bar}\n`);
}

export async function runPeers(plan: PeerPlan): Promise<PeersResult> {
  const { log } = plan;
  if (!plan.peers.length) return { runs: [] };
  let env;
  let model;
  try {
    env = await ensurePeerPython(log, plan.basePython);
    model = await peerModel(plan.model, plan.repo, log);
  } catch (err) {
    const why = err instanceof PeerPythonUnavailable ? err.message : `the peers cannot be set up: ${(err as Error).message}`;
    loud(log, `PEERS SKIPPED (${plan.peers.join(', ')}): ${why}`);
    return { runs: [], skipped: why };
  }
  const environment: PeerEnvironment = {
    venv: env.venv, versions: env.versions, installSeconds: env.installSeconds, sizeMiB: env.sizeMiB, madeThisRun: env.made,
    onnx: path.relative(REPO_ROOT, model.onnx),
  };
  const rates = openRates(plan.ours.points, 'rest-raw');
  const runs: PeerRun[] = [];
  for (const name of plan.peers) {
    const logFile = path.join(plan.logDir, `${name}.log`);
    log(`${PEER_LABELS[name]}: starting (log ${path.relative(REPO_ROOT, logFile)}) …`);
    let peer;
    try {
      peer = await startPeer(name, {
        env, onnx: model.onnx, manifest: model.manifest, model: plan.repo.name, cpus: plan.cpus, threads: plan.threads,
        maxBatch: plan.maxBatch, batchWaitMs: plan.batchWaitMs, maxOngoing: plan.maxOngoing,
        probe: plan.payloads.http['rest-raw'], logFile, readyTimeoutMs: plan.readyTimeoutMs,
        ...(plan.pinCpus ? { pinCpus: plan.pinCpus } : {}),
      });
    } catch (err) {
      loud(log, `${PEER_LABELS[name]} did not start: ${(err as Error).message}`);
      runs.push({ name, description: PEER_LABELS[name], settings: {}, points: [], error: (err as Error).message.split('\n')[0] ?? 'failed' });
      continue;
    }
    const run: PeerRun = { name, description: peer.description, settings: peer.settings, startSeconds: peer.startSeconds, points: [] };
    try {
      run.rssIdleKiB = (await peer.memory()).rssKiB;
      log(`${PEER_LABELS[name]}: ready in ${peer.startSeconds.toFixed(1)} s, pid ${peer.pid}; ${peer.description}`);
      try {
        const answer = compareAnswers(plan.ours.answer, peer.firstAnswer);
        run.answer = answer;
        log(`${PEER_LABELS[name]}: top-1 ${answer.peerTop5[0]?.index} (ours ${answer.oursTop5[0]?.index})` +
          `${answer.sameTop1 ? ', same' : ', DIFFERENT'}; top-5 scores within ${answer.maxScoreDiff.toExponential(1)} ` +
          `(${answer.maxRelativeScoreDiff.toExponential(1)} of the top score)`);
      } catch (err) {
        loud(log, `${PEER_LABELS[name]}: answers not compared: ${(err as Error).message}`);
      }
      run.points = await runPeerSweep({ ...plan.sweep, payloads: plan.payloads, server: { baseUrl: peer.baseUrl, grpcAddress: '', memory: peer.memory }, peer: name },
        plan.concurrencies, rates);
      run.rssEndKiB = (await peer.memory()).rssKiB;
      run.summary = summarizeKinds(run.points)[0];
      run.comparison = comparePeer(plan.ours.summary, run.summary);
    } catch (err) {
      loud(log, `${PEER_LABELS[name]} failed during the sweep: ${(err as Error).message}`);
      run.error = (err as Error).message.split('\n')[0] ?? 'failed';
    } finally {
      await peer.stop();
    }
    runs.push(run);
  }
  return { runs, environment };
}
