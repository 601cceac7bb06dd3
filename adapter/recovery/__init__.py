"""Startup recovery: what a killed adapter left unfinished is finished and reported.

One module per job:

- `adapter.recovery.selection`: which calls and recordings to recover;
- `adapter.recovery.leftovers`: finishing a recording from the files the PBX left;
- `adapter.recovery.callbacks`: the callbacks and requests still owed for them;
- `adapter.recovery.claims`: which node runs which call;
- `adapter.recovery.run`: `recover` and `sweep`, the steps below in order;
- `adapter.recovery.startup`: the startup run and the periodic sweeps as background tasks.

`recover` runs once when the adapter starts, after the outbox and the PBX connection are up.
It looks at the calls this node was running when it stopped (status not final, created before
this start, owned by this node or by no node; see `claim_call`) and:

1. **Channels still up** on the PBX are hung up (normal clearing), with a log line. They are
   not re-adopted: an AsyncAGI channel waits forever for its next command, and the adapter
   cannot resume a TwiML document mid-way (the position in the document, `<Gather>` input, the
   pending action request and the cookies of the call were in the dead process). Starting the
   Voice URL again would send the app a second ``CallStatus=ringing`` request for a call it
   already answered. Hanging up ends the call the way a caller hang-up would, and makes the
   PBX close the recording files, which are then reported.
2. **Recordings not final** (``in-progress``, ``paused``, ``stopped``, ``processing``): each is
   claimed (compare-and-set to ``processing``, so two runs never finish the same one; one
   already ``processing`` is another run's, taken over only if that run is dead: claimed
   before this recovery began, or, for a sweep, longer ago than ``CLAIM_LEASE``), its PBX
   files are awaited until the PBX has closed them (at most `close_wait` seconds; a file it
   never closed gets its WAV header repaired, `adapter.recordings.wav_repair`), made into the
   final media by `adapter.recordings.finalise` as the live call would have, and the row
   becomes ``completed`` (with its duration) or ``absent`` (ErrorCode 16102: no audio; 12400:
   no usable file). The same RecordingSid is kept: it is the same recording; no SID is ever
   reused for another one.
3. **Callbacks**: for every recording of those calls, each status callback it asked for
   (``in-progress``, then ``completed`` or ``absent``) that is not in the outbox yet is queued,
   in that order. A callback already queued (or delivered) is never queued again, so a clean
   delivery is never repeated.
4. **Owed requests** (`adapter.callbacks.owed_requests`): the action request of a `<Record>`
   the crash interrupted is queued as Twilio makes it after a hang-up (``Digits=hangup``; none
   for an empty recording).
5. The **call** row becomes ``completed`` (children of a `<Dial>`, and REST calls, that were
   never answered: ``canceled``), with an end time: when its last recording file was written,
   else now; a REST call that asked for its ``completed`` status callback gets it now.

Every callback and request queued here carries the same outbox event id as the session would
have used (``RE…:completed``, ``RE…:action``, ``CA…:call:completed``), and the outbox queues an
event id once: a recovery racing a sweep, the session or another recovery cannot send it twice.

Finished calls whose recording was left open (the session ended without finishing it: an
error while storing it, an event lost with the PBX connection) get steps 2 and 3 as well, so
`sweep` (the same without step 1 and 4) is a safety net that may run at any time.

Pending callbacks themselves are the outbox's job (it resumes on start).

A recording is trimmed as its ``trim`` said (stored with it; rows of older releases have none:
`<Record>` files are then trimmed, Twilio's default, and call recordings not). Known limit:
recordings made before the status callback URL was stored absolute (older releases) resolve a
relative one against the number's Voice URL.
"""

from __future__ import annotations

__all__: list[str] = []
