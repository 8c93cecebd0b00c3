// Package transport moves export artifacts of a fold (see
// [snapshot.Log.Export]) between hosts through the backend itself, so that a
// host with an empty data directory can start from another host's fold and
// replay only the changes since (upstream spec §9.6–§9.11).
//
// Two stores hold a logical artifact key K under a prefix P:
//
//   - an object store ([kvcore.Objects]; NATS's Object Store) holds the
//     payloads, P/K.payloads/{cursor rank, 16 hex}-{first 8 bytes of the
//     manifest's BLAKE3, 16 hex}.tar, each a plain tar of one artifact
//     directory, written once and named by its content;
//   - a KV store ([kvcore.Store]) holds the pointer P/K.manifest.json, the
//     MANIFEST.json bytes of the newest artifact, and the export lease
//     P/K.lease.
//
// The pointer is published last, with a compare-and-swap on its KV
// revision (a JetStream expected-last-subject-sequence): it only moves to
// an artifact at the same or a newer cursor ([PointerPublishAllowed]), so
// racing exporters can never move it backwards. A NATS object store has no
// conditional put, which is why the pointer is a KV key and not an object.
//
// Downloads check that the payload's embedded manifest is byte-identical to
// the pointer and unpack it refusing anything but regular files and
// directories inside the destination; the backend's Import then verifies
// every file's digest. The [Lease] makes one host per round do the export
// ([RunExportRound]); correctness never depends on it, only on the pointer.
package transport
