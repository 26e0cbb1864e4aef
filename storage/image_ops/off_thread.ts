/**
 * Long image copies (convert, commit) run on a Worker so that the daemon's event loop keeps
 * answering API calls while gigabytes move. The operations themselves are the synchronous
 * ones of this folder; only where they run changes. Errors come back as the same classes
 * (`ImageError`, `DiskError`) so callers map them to API errors as before.
 *
 * @module
 */

import type { ErrorCode } from "../../common/errors.ts";
import { DiskError } from "../disk.ts";
import { ImageError } from "../qcow2/errors.ts";
import { BackingRefused } from "../image_probe.ts";
import type { CommitOptions } from "./commit.ts";
import type { ConvertOptions } from "./convert.ts";
import type { ProgressCallback } from "./scan.ts";

/** A request to the worker: one operation with plain-data arguments. */
export type OffThreadRequest =
  | { op: "convert"; source: string; target: string; options: Omit<ConvertOptions, "onProgress"> }
  | { op: "commit"; overlay: string; options: Omit<CommitOptions, "onProgress"> };

/** What the worker posts back. */
export type OffThreadMessage =
  | { kind: "progress"; done: number; total: number }
  | { kind: "done" }
  | { kind: "failed"; name: string; message: string; errno?: number; code?: ErrorCode };

const WORKER_URL = new URL("./off_thread_worker.ts", import.meta.url);

/** Runs `request` on a fresh Worker; resolves when it is done, rejects with its error. */
export function runOffThread(
  request: OffThreadRequest,
  onProgress?: ProgressCallback,
): Promise<void> {
  const worker = new Worker(WORKER_URL, { type: "module", name: `image-${request.op}` });
  return new Promise<void>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<OffThreadMessage>) => {
      const message = event.data;
      if (message.kind === "progress") {
        onProgress?.(message.done, message.total);
        return;
      }
      worker.terminate();
      if (message.kind === "done") resolve();
      else reject(rebuildError(message));
    };
    worker.onerror = (event) => {
      event.preventDefault();
      worker.terminate();
      reject(new Error(`The image ${request.op} worker failed: ${event.message}`));
    };
    worker.postMessage(request);
  });
}

function rebuildError(failure: Extract<OffThreadMessage, { kind: "failed" }>): Error {
  if (failure.name === "ImageError") return new ImageError(failure.message);
  if (failure.name === "BackingRefused") return new BackingRefused(failure.message);
  if (failure.name === "DiskError") {
    return new DiskError(failure.message, { errno: failure.errno, code: failure.code });
  }
  const error = new Error(failure.message);
  error.name = failure.name;
  return error;
}
