/**
 * The Worker side of off_thread.ts: runs one image operation and reports progress (at
 * most every 100 ms) and the outcome.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { DiskError } from "../disk.ts";
import { commitImage } from "./commit.ts";
import { convertImage } from "./convert.ts";
import type { OffThreadMessage, OffThreadRequest } from "./off_thread.ts";

const post = (message: OffThreadMessage) => self.postMessage(message);

self.onmessage = (event: MessageEvent<OffThreadRequest>) => {
  const request = event.data;
  let lastReport = 0;
  const onProgress = (done: number, total: number) => {
    const now = Date.now();
    if (now - lastReport < 100 && done < total) return;
    lastReport = now;
    post({ kind: "progress", done, total });
  };
  try {
    if (request.op === "convert") {
      convertImage(request.source, request.target, { ...request.options, onProgress });
    } else {
      commitImage(request.overlay, { ...request.options, onProgress });
    }
    post({ kind: "done" });
  } catch (error) {
    const failure = error instanceof Error ? error : new Error(String(error));
    post({
      kind: "failed",
      name: failure.name,
      message: failure.message,
      errno: error instanceof DiskError ? error.errno : undefined,
      code: error instanceof DiskError ? error.code : undefined,
    });
  }
};
