"""Auth0 users exports: the Management API's export job, and reading an export file.

The job (`POST /api/v2/jobs/users-exports`, format `json`) writes every user as one JSON
line, gzipped, to a download URL that is valid for a short time only; `GET
/api/v2/jobs/{id}` says when it is ready. The download is fetched without our bearer token
(it is a pre-signed URL on another host) and saved to a file, so a backfill reads the
users one line at a time whatever their number, and an interrupted one resumes on the
same file.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

import requests

from auth0_sync.errors import ManagementApiError
from auth0_sync.streams.client import API_PREFIX, ManagementClient, _is_loopback, _seg
from auth0_sync_cli.exits import CommandError

READ_USERS = "read:users"
GZIP_MAGIC = b"\x1f\x8b"
# The attributes every export asks for besides the mapped ones: who, and when.
EXPORT_BASE_FIELDS = ("user_id", "created_at", "updated_at", "app_metadata", "identities")
JOB_POLL_SECONDS = 2.0
JOB_TIMEOUT_SECONDS = 3600.0
DOWNLOAD_CHUNK = 1 << 16


def export_fields(mapped_paths: Sequence[str]) -> list[str]:
    """The top-level attributes an export must carry for the mapping (dotted paths are
    exported by their first step: `user_metadata.company` needs `user_metadata`)."""
    names = list(EXPORT_BASE_FIELDS)
    for path in mapped_paths:
        top = path.split(".", 1)[0]
        if top not in names:
            names.append(top)
    return names


class ExportClient(ManagementClient):
    """The users-export calls, on the event-stream client's token, retries and errors."""

    def start_users_export(self, fields: Sequence[str]) -> dict[str, Any]:
        """Ask Auth0 to export every user with these attributes; the job document."""
        body = {"format": "json", "fields": [{"name": name} for name in fields]}
        return self._object(
            "POST", "/jobs/users-exports", scope=READ_USERS, body=body, ok=(200, 201)
        )

    def job(self, job_id: str) -> dict[str, Any]:
        return self._object("GET", f"/jobs/{_seg(job_id)}", scope=READ_USERS)

    def wait_for_job(
        self,
        job_id: str,
        *,
        poll_seconds: float = JOB_POLL_SECONDS,
        timeout_seconds: float = JOB_TIMEOUT_SECONDS,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the job is completed (its document, with `location`) or failed."""
        call = f"GET {API_PREFIX}/jobs/{job_id}"
        give_up = self._clock() + timeout_seconds
        while True:
            job = self.job(job_id)
            if on_poll is not None:
                on_poll(job)
            status = job.get("status")
            if status == "completed":
                if not job.get("location"):
                    raise ManagementApiError(call, "the job is completed but has no location")
                return job
            if status == "failed":
                raise ManagementApiError(
                    call, f"the users export failed in Auth0 ({job.get('summary') or 'no detail'})"
                )
            if self._clock() >= give_up:
                raise ManagementApiError(
                    call, f"the users export is still {status!r} after {timeout_seconds:.0f}s"
                )
            self._sleep(poll_seconds)

    def download(self, location: str, path: str) -> int:
        """Save the export at `location` to `path`; the bytes written.

        The location is a pre-signed URL: no Authorization header goes with it (our token
        must not reach another host), and it expires soon after the job completes.
        """
        parts = urlsplit(location)
        if parts.scheme != "https" and not (
            parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname)
        ):
            raise ManagementApiError(
                "GET export location", f"refusing to download from a non-https URL {location!r}"
            )
        where = f"GET {parts.scheme}://{parts.netloc}{parts.path}"
        try:
            response = requests.get(location, stream=True, timeout=self._timeout)
        except requests.RequestException as exc:
            raise ManagementApiError(where, f"cannot download the export ({exc})") from exc
        with response:
            if response.status_code in (403, 410) or (
                response.status_code == 400 and b"expired" in response.content.lower()
            ):
                raise ManagementApiError(
                    where,
                    f"the export's download link has expired (HTTP {response.status_code}): "
                    "Auth0 keeps it valid for a short time only; run the command again for "
                    "a new export",
                    response.status_code,
                )
            if response.status_code != 200:
                raise ManagementApiError(
                    where,
                    f"HTTP {response.status_code} downloading the export",
                    response.status_code,
                )
            written = 0
            partial = path + ".part"
            with open(partial, "wb") as out:
                for chunk in response.iter_content(DOWNLOAD_CHUNK):
                    out.write(chunk)
                    written += len(chunk)
            os.replace(partial, path)
        return written


def fetch_export(
    client: ExportClient,
    fields: Sequence[str],
    path: str,
    *,
    poll_seconds: float = JOB_POLL_SECONDS,
    say: Callable[[str], None] = lambda _line: None,
) -> dict[str, Any]:
    """Run an export job to its end and save the file; the completed job document."""
    job = client.start_users_export(fields)
    job_id = str(job.get("id") or "")
    if not job_id:
        raise ManagementApiError(f"POST {API_PREFIX}/jobs/users-exports", "the answer has no id")
    say(f"users export {job_id} started; waiting for Auth0 to write it")
    done = client.wait_for_job(job_id, poll_seconds=poll_seconds)
    size = client.download(str(done["location"]), path)
    say(f"users export {job_id} saved to {path} ({size} bytes)")
    return done


# Reading an export ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportedUser:
    """One line of an export: its line number (from 1) and the user's attributes (None for
    a blank line, kept so that a checkpoint can count every line)."""

    line: int
    user: dict[str, Any] | None


def _open(path: str) -> IO[bytes] | gzip.GzipFile:
    try:
        raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, closed there
    except OSError as exc:
        raise CommandError(f"--export {path}: {exc.strerror or exc}") from exc
    head = raw.read(2)
    raw.seek(0)
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # `raw` is closed by read_export
    return raw


def read_export(path: str, *, start_after: int = 0) -> Iterator[ExportedUser]:
    """The users of an NDJSON export (gzipped or not), one at a time, after line
    `start_after`. A line that is not a user object stops with a message naming the line."""
    stream = _open(path)
    try:
        for number, raw in enumerate(stream, start=1):
            if number <= start_after:
                continue
            if not raw.strip():
                yield ExportedUser(number, None)
                continue
            try:
                user = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise CommandError(f"{path}:{number}: not a JSON object: {exc}") from exc
            if not isinstance(user, dict):
                raise CommandError(
                    f"{path}:{number}: expected a user object, got JSON {user!r:.40}"
                )
            if not isinstance(user.get("user_id"), str) or not user["user_id"]:
                raise CommandError(f"{path}:{number}: the user has no user_id")
            yield ExportedUser(number, user)
    except (OSError, EOFError) as exc:
        raise CommandError(f"{path}: cannot read the export: {exc}") from exc
    finally:
        inner = getattr(stream, "fileobj", None)
        stream.close()
        if inner is not None:
            inner.close()


def default_export_path(now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return f"users-export-{stamp}.json.gz"
