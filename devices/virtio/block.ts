/**
 * virtio-blk (virtio 1.2, 5.2) on the storage layer's `Disk`: read, write, flush, get-id,
 * discard and write-zeroes, read-only disks, capacity changes, an optional rate limiter.
 * Data moves straight between the disk and guest memory (the request's buffers are live
 * views of guest RAM).
 *
 * @module
 */

import { type Disk, DiskError } from "../../storage/disk.ts";
import {
  BLOCK_ID_BYTES,
  BlockRequest,
  type BlockSegment,
  readSegments,
  SECTOR_SIZE,
  SEGMENT_SIZE,
  VIRTIO_BLK_S,
  VIRTIO_BLK_T,
  WRITE_ZEROES_FLAG_UNMAP,
} from "./block_request.ts";
import { OnceLog } from "./once_log.ts";
import { ThrottledQueue } from "./throttled_queue.ts";
import type { DescriptorChain } from "./queue_types.ts";
import { type DeviceRateLimiter, retryWithTimeout, type ScheduleRetry } from "./rate_limiter.ts";
import { type ActivateContext, VIRTIO_F, VIRTIO_ID, type VirtioDevice } from "./virtio_device.ts";
import { formatU64 } from "../../common/persist.ts";
import { DISK_SERIAL_RULE, isDiskSerial } from "../../common/validators.ts";
import { DenovisorError } from "../../common/errors.ts";
import { limiterState } from "./device_persist.ts";
import { parseBlockState, type VirtioBlockState } from "./block_state.ts";

export type { VirtioBlockState } from "./block_state.ts";

/** virtio-blk feature bits (virtio 1.2, 5.2.3). */
export const VIRTIO_BLK_F = {
  SEG_MAX: 1n << 2n,
  RO: 1n << 5n,
  BLK_SIZE: 1n << 6n,
  FLUSH: 1n << 9n,
  DISCARD: 1n << 13n,
  WRITE_ZEROES: 1n << 14n,
} as const;

/** Bytes of struct virtio_blk_config we expose: up to write_zeroes_may_unmap and padding. */
export const BLOCK_CONFIG_SIZE = 60;
/** Largest discard or write-zeroes segment: 4 GiB - 512 bytes, the u32 limit in sectors. */
export const MAX_DISCARD_SECTORS = 0x7f_ffff;
/** Segments per discard or write-zeroes request. */
export const MAX_DISCARD_SEGMENTS = 32;
/** Discards are punched holes: 4 KiB (the host file system block) granularity. */
export const DISCARD_SECTOR_ALIGNMENT = 8;

/** What virtio-blk needs of a rate limiter. */
export type BlockRateLimiter = DeviceRateLimiter;

/** Options of a virtio-blk device. */
export interface VirtioBlockOptions {
  disk: Disk;
  /** Name for logs, e.g. "vda". */
  name?: string;
  /** Queue size (a power of two); 256 by default. */
  queueSize?: number;
  /** Answer to GET_ID, at most 20 ASCII bytes; the disk's id by default. */
  serial?: string;
  rateLimiter?: BlockRateLimiter;
  /** How throttled requests are retried; real timers by default. */
  scheduleRetry?: ScheduleRetry;
  /** Where offences by the driver and disk errors are reported (once each). */
  log?: (message: string) => void;
}

/** Counters for stats and tests. */
export interface BlockStats {
  reads: number;
  writes: number;
  bytesRead: number;
  bytesWritten: number;
  flushes: number;
  discards: number;
  writeZeroes: number;
  errors: number;
  unsupported: number;
  throttled: number;
}

/** Thrown for options that make no sense (a long serial, a bad queue size). */
export class BlockConfigError extends DenovisorError {
  constructor(message: string) {
    super("invalid", message);
  }
}

/** A virtio-blk device serving one queue from a `Disk`. */
export class VirtioBlock implements VirtioDevice {
  readonly type = VIRTIO_ID.BLOCK;
  readonly name: string;
  readonly queueSizes: readonly number[];
  readonly features: bigint;
  readonly configSize = BLOCK_CONFIG_SIZE;
  #disk: Disk;
  #serial: Uint8Array;
  readonly #serialConfigured: boolean;
  readonly #log: OnceLog;
  readonly #request = new BlockRequest();
  readonly #stats: BlockStats = {
    reads: 0,
    writes: 0,
    bytesRead: 0,
    bytesWritten: 0,
    flushes: 0,
    discards: 0,
    writeZeroes: 0,
    errors: 0,
    unsupported: 0,
    throttled: 0,
  };
  readonly #queue: ThrottledQueue;
  readonly #limiter?: BlockRateLimiter;

  constructor(options: VirtioBlockOptions) {
    const queueSize = options.queueSize ?? 256;
    if (
      !Number.isInteger(queueSize) || queueSize < 2 || queueSize > 32768 ||
      (queueSize & (queueSize - 1))
    ) {
      throw new BlockConfigError(`Queue size ${queueSize} is not a power of two from 2 to 32768`);
    }
    this.#disk = options.disk;
    this.name = `virtio-blk ${options.name ?? options.disk.path}`;
    this.queueSizes = [queueSize];
    this.#serial = serialBytes(options.serial ?? options.disk.id);
    this.#serialConfigured = options.serial !== undefined;
    this.#log = new OnceLog(options.log);
    this.#limiter = options.rateLimiter;
    this.#queue = new ThrottledQueue({
      name: this.name,
      limiter: options.rateLimiter,
      scheduleRetry: options.scheduleRetry ?? retryWithTimeout,
      cost: dataBytes,
      handle: (chain) => this.#handle(chain),
      onThrottled: () => this.#stats.throttled++,
    });
    let features = VIRTIO_F.VERSION_1 | VIRTIO_F.RING_EVENT_IDX | VIRTIO_F.RING_INDIRECT_DESC |
      VIRTIO_BLK_F.SEG_MAX | VIRTIO_BLK_F.BLK_SIZE | VIRTIO_BLK_F.FLUSH;
    features |= this.#disk.readOnly
      ? VIRTIO_BLK_F.RO
      : VIRTIO_BLK_F.DISCARD | VIRTIO_BLK_F.WRITE_ZEROES;
    this.features = features;
  }

  /** The disk behind the device. */
  get disk(): Disk {
    return this.#disk;
  }

  /** Capacity in 512-byte sectors (a partial last sector is not addressable). */
  get capacity(): number {
    return Math.floor(this.#disk.size / SECTOR_SIZE);
  }

  /** A snapshot of the counters. */
  get stats(): BlockStats {
    return { ...this.#stats };
  }

  /** The configuration the guest saw, the counters and the rate limiter. */
  save(): VirtioBlockState {
    return {
      version: 1,
      capacity: formatU64(BigInt(this.capacity)),
      readOnly: this.#disk.readOnly,
      serial: this.#serialText(),
      stats: this.stats,
      rateLimiter: limiterState(this.#limiter),
    };
  }

  /**
   * Checks a saved state (untrusted, and it must describe this device's disk) and returns
   * the function that applies it.
   */
  prepareRestore(state: unknown, path: string): () => void {
    const saved = parseBlockState(state, path, {
      path: this.#disk.path,
      capacity: this.capacity,
      readOnly: this.#disk.readOnly,
      serial: this.#serialText(),
      serialConfigured: this.#serialConfigured,
      limiter: this.#limiter,
    });
    return () => {
      Object.assign(this.#stats, saved.stats);
      this.#serial = serialBytes(saved.serial);
      saved.commitLimiter();
    };
  }

  readConfig(offset: number, data: Uint8Array): void {
    const config = new Uint8Array(BLOCK_CONFIG_SIZE);
    const view = new DataView(config.buffer);
    const queueSize = this.queueSizes[0];
    view.setBigUint64(0, BigInt(this.capacity), true);
    view.setUint32(12, queueSize - 2, true); // seg_max: the chain also holds header and status
    view.setUint32(20, SECTOR_SIZE, true); // blk_size
    view.setUint16(34, 1, true); // num_queues
    view.setUint32(36, MAX_DISCARD_SECTORS, true);
    view.setUint32(40, MAX_DISCARD_SEGMENTS, true);
    view.setUint32(44, DISCARD_SECTOR_ALIGNMENT, true);
    view.setUint32(48, MAX_DISCARD_SECTORS, true); // max_write_zeroes_sectors
    view.setUint32(52, MAX_DISCARD_SEGMENTS, true); // max_write_zeroes_seg
    config[56] = 1; // write_zeroes_may_unmap
    data.set(config.subarray(offset, offset + data.length));
  }

  writeConfig(_offset: number, _data: Uint8Array): void {
    // Every field is read-only without VIRTIO_BLK_F_CONFIG_WCE, which is not offered.
  }

  activate(context: ActivateContext): void {
    this.#queue.activate(context);
  }

  notify(queueIndex: number): void {
    if (queueIndex === 0) this.#queue.serve();
  }

  reset(): void {
    this.#queue.reset();
  }

  /**
   * Grows or shrinks the disk to `newSize` bytes and tells the driver the capacity
   * changed. Throws `DiskError` if the disk cannot be resized (read-only, no support).
   */
  resize(newSize: number): void {
    if (!this.#disk.resize) {
      throw new DiskError(`Cannot resize disk ${this.#disk.path}: its format cannot be resized`);
    }
    this.#disk.resize(newSize);
    this.#queue.configChanged();
  }

  /**
   * Hands the device a freshly opened image of the same disk and returns the previous
   * one (a migration that let go of its images takes them back); the device must be
   * quiescent (machine paused, event loop held).
   */
  replaceDisk(disk: Disk): Disk {
    const previous = this.#disk;
    if (disk.size !== previous.size || disk.readOnly !== previous.readOnly) {
      throw new DiskError(
        `Cannot put ${disk.path} behind ${this.name}: its size or mode is not the device's`,
      );
    }
    this.#disk = disk;
    return previous;
  }

  close(): void {
    this.reset();
    this.#disk.close();
  }

  /** Serves one chain; returns the bytes written into it, or -1 when the device failed. */
  #handle(chain: DescriptorChain): number {
    const request = this.#request;
    const problem = request.parse(chain);
    if (problem !== undefined) {
      if (!request.statusBuffer) {
        this.#fail(`${this.name}: malformed request: ${problem}`);
        return -1;
      }
      this.#log.log(problem, `${this.name}: malformed request: ${problem}`);
      this.#stats.errors++;
      request.setStatus(VIRTIO_BLK_S.IOERR);
      return 1;
    }
    let status: number = VIRTIO_BLK_S.OK;
    let written = 1;
    try {
      switch (request.type) {
        case VIRTIO_BLK_T.IN:
          status = this.#read(request);
          if (status === VIRTIO_BLK_S.OK) written += request.dataLength;
          break;
        case VIRTIO_BLK_T.OUT:
          status = this.#write(request);
          break;
        case VIRTIO_BLK_T.FLUSH:
          this.#disk.flush();
          this.#stats.flushes++;
          break;
        case VIRTIO_BLK_T.GET_ID:
          written += this.#getId(request);
          break;
        case VIRTIO_BLK_T.DISCARD:
        case VIRTIO_BLK_T.WRITE_ZEROES:
          status = this.#zeroRanges(request);
          break;
        default:
          status = VIRTIO_BLK_S.UNSUPP;
      }
    } catch (error) {
      if (!(error instanceof DiskError)) throw error;
      this.#log.log(`disk:${error.errno ?? error.message}`, `${this.name}: ${error.message}`);
      status = VIRTIO_BLK_S.IOERR;
      written = 1;
    }
    if (status === VIRTIO_BLK_S.IOERR) this.#stats.errors++;
    if (status === VIRTIO_BLK_S.UNSUPP) this.#stats.unsupported++;
    request.setStatus(status);
    return written;
  }

  #read(request: BlockRequest): number {
    const offset = this.#dataOffset(request, request.dataLength);
    if (offset < 0) return VIRTIO_BLK_S.IOERR;
    this.#disk.read(offset, request.data);
    this.#stats.reads++;
    this.#stats.bytesRead += request.dataLength;
    return VIRTIO_BLK_S.OK;
  }

  #write(request: BlockRequest): number {
    if (this.#disk.readOnly) return VIRTIO_BLK_S.IOERR;
    const offset = this.#dataOffset(request, request.dataLength);
    if (offset < 0) return VIRTIO_BLK_S.IOERR;
    this.#disk.write(offset, request.data);
    // Without VIRTIO_BLK_F_FLUSH the driver expects a write-through cache (5.2.6.2).
    if (!this.#negotiated(VIRTIO_BLK_F.FLUSH)) this.#disk.flush();
    this.#stats.writes++;
    this.#stats.bytesWritten += request.dataLength;
    return VIRTIO_BLK_S.OK;
  }

  /** The byte offset of an IN/OUT request, or -1 when misaligned or past the end. */
  #dataOffset(request: BlockRequest, length: number): number {
    if (length % SECTOR_SIZE !== 0) {
      this.#log.log("misaligned", `${this.name}: data of ${length} bytes is not whole sectors`);
      return -1;
    }
    if (!this.#inCapacity(request.sector, length / SECTOR_SIZE)) {
      this.#log.log("range", `${this.name}: request beyond capacity ${this.capacity} sectors`);
      return -1;
    }
    return Number(request.sector) * SECTOR_SIZE;
  }

  #inCapacity(sector: bigint, sectors: number): boolean {
    return sector + BigInt(sectors) <= BigInt(this.capacity);
  }

  #getId(request: BlockRequest): number {
    let at = 0;
    for (const buffer of request.data) {
      if (at >= BLOCK_ID_BYTES) break;
      const take = Math.min(buffer.length, BLOCK_ID_BYTES - at);
      buffer.set(this.#serial.subarray(at, at + take));
      at += take;
    }
    return at;
  }

  #zeroRanges(request: BlockRequest): number {
    const discard = request.type === VIRTIO_BLK_T.DISCARD;
    const feature = discard ? VIRTIO_BLK_F.DISCARD : VIRTIO_BLK_F.WRITE_ZEROES;
    if (!this.#negotiated(feature)) return VIRTIO_BLK_S.UNSUPP;
    if (this.#disk.readOnly) return VIRTIO_BLK_S.IOERR;
    if (request.dataLength / SEGMENT_SIZE > MAX_DISCARD_SEGMENTS) return VIRTIO_BLK_S.IOERR;
    const segments = readSegments(request.data, request.dataLength);
    if (!segments) return VIRTIO_BLK_S.IOERR;
    const allowedFlags = discard ? 0 : WRITE_ZEROES_FLAG_UNMAP;
    if (segments.some((s) => (s.flags & ~allowedFlags) !== 0)) return VIRTIO_BLK_S.UNSUPP;
    if (segments.some((s) => !this.#validSegment(s))) return VIRTIO_BLK_S.IOERR;
    for (const segment of segments) {
      const offset = Number(segment.sector) * SECTOR_SIZE;
      const length = segment.sectors * SECTOR_SIZE;
      if (discard) {
        this.#disk.discard(offset, length);
      } else {
        this.#disk.writeZeroes(offset, length, {
          unmap: (segment.flags & WRITE_ZEROES_FLAG_UNMAP) !== 0,
        });
      }
    }
    if (discard) this.#stats.discards++;
    else this.#stats.writeZeroes++;
    return VIRTIO_BLK_S.OK;
  }

  #validSegment(segment: BlockSegment): boolean {
    return segment.sectors <= MAX_DISCARD_SECTORS &&
      this.#inCapacity(segment.sector, segment.sectors);
  }

  #serialText(): string {
    const end = this.#serial.indexOf(0);
    return new TextDecoder().decode(this.#serial.subarray(0, end < 0 ? this.#serial.length : end));
  }

  #negotiated(feature: bigint): boolean {
    return (this.#queue.features & feature) !== 0n;
  }

  #fail(reason: string): void {
    this.#queue.fail(reason);
  }
}

/** Data bytes of a chain for the rate limiter: what follows the header and precedes the status. */
function dataBytes(chain: DescriptorChain): number {
  return Math.max(0, chain.readableLength - 16) + Math.max(0, chain.writableLength - 1);
}

function serialBytes(serial: string): Uint8Array {
  if (!isDiskSerial(serial)) {
    throw new BlockConfigError(`Disk serial "${serial}" must be ${DISK_SERIAL_RULE}`);
  }
  const bytes = new TextEncoder().encode(serial);
  const padded = new Uint8Array(BLOCK_ID_BYTES);
  padded.set(bytes);
  return padded;
}
