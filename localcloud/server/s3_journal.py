"""moto's S3 made durable: each change a request makes is synced to the S3Store before the answer.

moto keeps answering S3 (REST API, errors, listings, multipart, tagging); this module only
- records, per request, which buckets and keys moto's backend methods touched (the backend's
  mutating methods are wrapped, so copies, multipart completes and multi-object deletes name their
  keys exactly as moto parsed them),
- after moto answered, makes the store match moto's current state of each of them (one transaction
  each), and only then lets the answer go out (a failed sync answers 500 InternalError, which SDKs
  retry),
- at start, loads the store back into moto, each object's bytes left in its blob file (a
  `BlobReader` replaces moto's buffer), so memory and restart time don't grow with the data; a
  changed key's bytes move from moto's buffer to its blob the same way once stored.
"""

from __future__ import annotations

import ctypes
import datetime
import functools
import gc
import inspect
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Response

from localcloud import config
from localcloud.server.s3_store import CHUNK, BlobReader, BucketRecord, ObjectRecord, S3Store

StartResponse = Callable[..., Any]
MUTATING = {"PUT", "POST", "DELETE"}
# moto backend methods that change what the store keeps, and how to name what they touched.
_BUCKET_METHODS = ("create_bucket", "delete_bucket", "put_bucket_tagging", "delete_bucket_tagging")
_KEY_METHODS = ("put_object", "delete_object", "delete_object_tagging", "put_object_tagging")
_MARK = "_localcloud_blob"  # attribute set on a FakeKey whose bytes are the named stored blob
# moto's buffer for a new key's bytes ($MOTO_S3_DEFAULT_KEY_BUFFER_SIZE): past this they go to a
# temporary file until the sync moves them into their blob (0 would mean "never roll over").
MOTO_BUFFER_BYTES = 64 * 1024
# After storing this many bytes, collect garbage and hand freed heap back to the system: moto and
# werkzeug leave each request body in reference cycles, and glibc keeps what Python frees.
RELEASE_AFTER_BYTES = 8 * 1024 * 1024
log = logging.getLogger("localcloud")


def durable(moto_app: Any, root: Path, account_id: str = config.ACCOUNT_ID) -> S3Journal:
    """The middleware over moto_app, moto's S3 loaded from the store at root (before serving)."""
    from moto.s3.models import s3_backends

    journal = S3Journal(moto_app, S3Store(root), s3_backends[account_id]["aws"])
    buckets, objects = journal.load()
    journal.install()
    log.info("S3 store: %d buckets, %d objects loaded from %s", buckets, objects, root)
    return journal


class S3Journal:
    """WSGI middleware in front of moto's app, and the copy of moto's S3 state in a store."""

    def __init__(self, app: Any, store: S3Store, backend: Any) -> None:
        self.app = app
        self.store = store
        self.backend = backend
        self._local = threading.local()
        self._lock = threading.Lock()  # one sync at a time reads moto's state and writes the store
        # moto hashes a new key's bytes lazily, for its answer, and closes them as soon as another
        # PUT replaces the key: each PUT hashes its key before the next can replace it.
        self._put_lock = threading.Lock()
        from moto.s3.models import FakeKey  # moto is imported by the server's start, not before

        self._key_type = FakeKey

    # ---- start

    def load(self) -> tuple[int, int]:
        """Put every stored bucket and object back into moto; (buckets, objects) loaded."""
        self.store.sweep()
        loaded = set()
        for bucket in self.store.buckets():
            fake = self.backend.create_bucket(bucket.name, bucket.region)
            fake.creation_date = datetime.datetime.fromisoformat(bucket.created)
            if bucket.tags:
                self.backend.put_bucket_tagging(bucket.name, bucket.tags)
            loaded.add(bucket.name)
        count = 0
        for record in self.store.objects():
            path = self.store.blob_path(record.blob)
            if record.bucket not in loaded or not path.is_file():
                log.warning(
                    "S3 store: skipping %s/%s (bucket or blob missing)", record.bucket, record.key
                )
                continue
            self._restore(record, path)
            count += 1
        return len(loaded), count

    def _restore(self, record: ObjectRecord, path: Path) -> None:
        extra = record.extra
        fake = self.backend.put_object(
            record.bucket,
            record.key,
            b"",
            storage=extra.get("storage_class"),
            etag=record.etag,
            disable_notification=True,
        )
        with fake.lock:
            fake._value_buffer.close()
            fake._value_buffer = BlobReader(path)
            fake.contentsize = record.size
        fake.last_modified = datetime.datetime.fromisoformat(record.last_modified)
        fake.set_metadata(dict(record.metadata))
        for name in ("checksum_algorithm", "checksum_value", "checksum_type"):
            setattr(fake, name, extra.get(name))
        if record.tags:
            self.backend.put_object_tagging(fake, record.tags)
        setattr(fake, _MARK, record.blob)

    def install(self) -> None:
        """Wrap the backend's mutating methods so each request learns what it touched."""
        for name in _BUCKET_METHODS + _KEY_METHODS:
            method = getattr(self.backend, name)
            setattr(self.backend, name, self._recording(name, method))

    def _recording(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(method)

        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = None
            try:
                if name != "put_object":
                    return method(*args, **kwargs)
                with self._put_lock:
                    result = method(*args, **kwargs)
                    result.etag  # noqa: B018 - hashed now, before an overwrite can dispose it
                return result
            finally:
                touched = getattr(self._local, "touched", None)
                if touched is not None:
                    touched.add(_touched(name, signature.bind(*args, **kwargs).arguments))
                    if name == "put_object" and result is not None:
                        self._local.created.append(result)

        return wrapper

    # ---- per request

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if "HTTP_X_AMZ_TARGET" in environ:
            return self.app(environ, start_response)
        if environ.get("REQUEST_METHOD") == "GET":
            return self._read(environ, start_response)
        if environ.get("REQUEST_METHOD") not in MUTATING:
            return self.app(environ, start_response)
        answer: list[Any] = []

        def deferred(status: str, headers: list[Any], exc_info: Any = None) -> Callable[..., Any]:
            answer[:] = [status, headers, exc_info]
            return _no_write

        self._local.touched, self._local.created = set(), []
        try:
            body = self.app(environ, deferred)
        finally:
            touched, self._local.touched = self._local.touched, None
            created, self._local.created = self._local.created, []
        self._local.release = False
        try:
            self.sync(touched, created)
            if self._local.release:
                _release_memory()
        except Exception:
            log.exception("S3 store: could not record a change")
            if hasattr(body, "close"):
                body.close()
            return _internal_error()(environ, start_response)
        start_response(*answer)
        return body

    def _read(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """A read: moto answers a GET from one bytes object, so a big one is released after."""
        sizes: list[int] = []

        def sized(status: str, headers: list[Any], exc_info: Any = None) -> Callable[..., Any]:
            sizes.extend(int(v) for k, v in headers if k.lower() == "content-length")
            return start_response(status, headers, exc_info)

        body = self.app(environ, sized)
        if not sizes or sizes[0] < RELEASE_AFTER_BYTES:
            return body
        return _ReleasingBody(body)

    def sync(self, touched: Iterable[tuple[str, ...]], created: list[Any]) -> None:
        """Make the store match moto's current state of each touched bucket, then each key.

        `created` holds the keys this request made: only their maker reads their bytes, because
        moto computes a new key's ETag from its buffer, unlocked, while it builds that answer.
        """
        for item in sorted(touched, key=lambda t: (len(t), t)):
            if len(item) == 1:
                self._sync_bucket(item[0])
            else:
                self._sync_key(item[0], item[1], created)

    def _sync_bucket(self, name: str) -> None:
        with self._lock:
            bucket = self.backend.buckets.get(name)
            if bucket is None:
                self.store.delete_bucket(name)
                return
            tags = self.backend.tagger.get_tag_dict_for_resource(bucket.arn)
            created = bucket.creation_date.isoformat()
            self.store.put_bucket(BucketRecord(name, bucket.region_name, created, tags))

    def _sync_key(self, bucket: str, key: str, created: list[Any]) -> None:
        fake = self._current(bucket, key)
        staged = None
        mine = any(fake is made for made in created)
        if fake is not None and getattr(fake, _MARK, None) is None and mine:
            try:
                staged = self.store.stage(_chunks(fake))  # the long part, outside the lock
            except (ValueError, OSError):
                # moto closes an overwritten key's buffer: a newer request owns this key now
                if self._current(bucket, key) is not fake:
                    return
                raise
            if staged.size >= RELEASE_AFTER_BYTES:
                self._local.release = True
        with self._lock:
            try:
                now = self._current(bucket, key)
                if now is not fake:  # changed meanwhile: the request that changed it syncs it
                    return
                if now is None:
                    self.store.delete_object(bucket, key)
                    return
                sha = staged.sha256 if staged else getattr(now, _MARK, None)
                if sha is None:  # its maker has not stored it yet; it will, with this change
                    return
                self.store.put_object(self._record(now, bucket, sha), staged)
                staged = None
                self._adopt(now, sha)
            finally:
                if staged is not None:
                    self.store.discard(staged)

    def _current(self, bucket: str, key: str) -> Any:
        fake_bucket = self.backend.buckets.get(bucket)
        fake = fake_bucket.keys.get(key) if fake_bucket is not None else None
        return fake if isinstance(fake, self._key_type) else None  # a delete marker is none

    def _record(self, fake: Any, bucket: str, sha: str) -> ObjectRecord:
        extra = {"storage_class": fake.storage_class}
        for name in ("checksum_algorithm", "checksum_value", "checksum_type"):
            if getattr(fake, name, None) is not None:
                extra[name] = getattr(fake, name)
        return ObjectRecord(
            bucket=bucket,
            key=fake.name,
            size=fake.size,
            etag=fake.etag.strip('"'),
            last_modified=fake.last_modified.isoformat(),
            metadata=dict(fake.metadata),
            tags=self.backend.tagger.get_tag_dict_for_resource(fake.arn),
            blob=sha,
            extra=extra,
        )

    def _adopt(self, fake: Any, sha: str) -> None:
        """Read the key's bytes from its blob from now on, freeing moto's buffer."""
        if getattr(fake, _MARK, None) == sha:
            return
        with fake.lock:
            old, fake._value_buffer = fake._value_buffer, BlobReader(self.store.blob_path(sha))
            old.close()
        setattr(fake, _MARK, sha)


def _touched(method: str, arguments: dict[str, Any]) -> tuple[str, ...]:
    if method in _BUCKET_METHODS:
        return (arguments["bucket_name"],)
    if "key" in arguments:  # put_object_tagging(key, tags)
        return (arguments["key"].bucket_name, arguments["key"].name)
    return (arguments["bucket_name"], arguments["key_name"])


def _chunks(fake: Any) -> Iterator[bytes]:
    """A key's bytes from moto's buffer, a chunk at a time, under the key's lock."""
    with fake.lock:
        buffer = fake._value_buffer
        buffer.seek(0)
        while chunk := buffer.read(CHUNK):
            yield chunk


class _ReleasingBody:
    """A WSGI body that releases memory once the server has sent it (and closed it)."""

    def __init__(self, body: Iterable[bytes]) -> None:
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        if hasattr(self.body, "close"):
            self.body.close()
        self.body = ()
        _release_memory()


def _release_memory() -> None:
    gc.collect()
    try:
        trim = ctypes.CDLL(None).malloc_trim  # glibc only; elsewhere the collection must do
    except (OSError, AttributeError):
        return
    trim(0)


def _no_write(_data: bytes) -> None:
    raise RuntimeError("moto's app does not use the WSGI write callable")


def _internal_error() -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
        "<Message>We encountered an internal error. Please try again.</Message></Error>"
    )
    return Response(body, 500, content_type="application/xml")
