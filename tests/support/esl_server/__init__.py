"""The ESL test server: a FreeSWITCH 1.10.12 stand-in for the driver tests, an asyncio ESL
server that speaks the protocol byte for byte as the lab transcripts
(`/work/shared/transcripts/freeswitch/`, lab notes §7) and writes real WAV files where
FreeSWITCH would.

It serves the tests of what a real switch cannot be made to do on demand (hostile frames, lost
connections, exact fault timing); everything else runs on a real FreeSWITCH (`freeswitch_real`).
What it reproduces:

- the inbound event socket: ``auth/request``, ``auth`` → ``+OK accepted`` / ``-ERR invalid``,
  ``api`` (status, uuid_exists, uuid_getvar, uuid_setvar, uuid_break, uuid_kill,
  uuid_record), ``event plain …``, ``nixevent``, ``filter`` (add, delete, delete
  all; events pass as mod_event_socket.c's event_handler decides: subscribed, then the
  filters), ``exit``, and the ACL's ``text/rude-rejection``; it can be dropped, and refused for
  a while (``set_inbound_down``), as when FreeSWITCH restarts;
- the outbound socket (``socket HOST:PORT async full``): it connects to the adapter, sends
  nothing until ``connect``, answers with ONE header-only frame of channel data (URL-encoded,
  ``Content-Type: command/reply`` after the data, ``Reply-Text: %2BOK%0A``, ``Socket-Mode``,
  ``Control``); ``myevents`` (CHANNEL_*, DTMF: not RECORD_*), ``linger``, ``event plain``,
  ``sendmsg`` execute/hangup with ``Event-UUID`` echoed as ``Application-UUID``;
- events built in the transcripts' layout (prolog, channel data, caller profile, variables in
  FreeSWITCH's order: a variable set again moves to the end, an empty one is deleted), encoded
  with FreeSWITCH's URL-encoding (bytes >= 0x80 are sent raw);
- the applications answer, set, playback, sleep and record, with FreeSWITCH's behaviour
  from the lab notes: record's whole-second epoch limit (N..N+1 s); stale ``record_*``
  variables; no completion cause from record; a file that cannot be opened hangs
  the call up (DESTINATION_OUT_OF_ORDER); relative paths resolved against ``sound_prefix``;
  hang-up with linger: CHANNEL_HANGUP, the running application's RECORD_STOP and completion,
  CHANNEL_HANGUP_COMPLETE, the ``text/disconnect-notice`` (before or after the last events),
  then the socket closes;
- the adapter's side of the socket closing without a hang-up (the adapter died) as
  mod_event_socket.c handles it: nothing is interrupted; the running application (and any
  still queued) runs to its own end, then ``socket`` returns and the dialplan hangs up
  (NORMAL_CLEARING, as dialplan/freeswitch/twiml.xml), which closes the ``uuid_record`` files;
  the events go nowhere. Until then the channel is up (``uuid_exists`` true, ``uuid_kill``
  ends it); `FakeCall.ended` is set once it is down and its recordings are closed;
- ``uuid_record`` start/stop (``all``)/mask/unmask/pause/resume with mod_commands' exact replies
  (transcripts t1, t6), per-recording ``{…}`` variables over channel variables, RECORD_START /
  RECORD_STOP (headers in the transcripts' order, ``Recording-Variable-*``), and a real WAV
  rendered from the call's media: the READ side is what the caller sends (440 Hz by default),
  the WRITE side is silent (nothing the channel plays is rendered); mono mixed or read-only;
  the 25-frame pre-buffer's 0.5 s lag on one-sided media (lab notes §7.6); mask = zeros,
  pause = dropped; a file with no frame is discarded; recordings end at hang-up
  (success-silence / no-input-timeout);
- ``uuid_break`` as CF_BREAK works: only a running application sees it, and each
  application's start clears it (``switch_core_session_exec``), so a break sent between
  applications, or while the next one is still queued (``app_start_delay``), is lost;
- ``bgapi`` on the inbound socket (mod_event_socket.c: the reply ``+OK Job-UUID: <id>`` at once,
  our ``Job-UUID`` header honoured) and its BACKGROUND_JOB event to the connections subscribed
  to it (prolog, ``Job-UUID``, ``Job-Owner-UUID: _undef_``, ``Job-Command``,
  ``Job-Command-Arg``, the command's output as the event body); ``originate`` as mod_commands'
  originate_function runs it: ``{vars}`` and one endpoint, a `Callee` (`DEFAULT_CALLEES`) that
  fails (``-ERR <CAUSE>``), rings out (``originate_timeout``: ``-ERR NO_ANSWER``) or answers;
  one that rings fires CHANNEL_PROGRESS (CHANNEL_PROGRESS_MEDIA for a 183, `ring_events`) in
  switch_channel.c's layout for an originated channel (`OriginatedChannel.ringing`), and the
  test may end the ringing with a cause (`FakeFreeSwitch.ringing_kills`); answered, the channel
  (`OriginatedChannel`: ``Call-Direction: outbound``, ``origination_uuid``, caller ID from
  ``origination_caller_id_number``, the ``{vars}`` as channel variables) is transferred to
  ``<exten> XML <context>`` and runs that context's ``socket`` action, read from the dialplan
  file (`load_dialplan`: ``X-PRE-PROCESS set`` and ``$${var}``); the callee's tone is the
  channel's READ side and it hangs up after ``talk_s``; then ``+OK <uuid>``. None of these
  frames is in the lab transcripts (t4 has only ``api bgapi originate`` → ``+OK Job-UUID: …``):
  their layout is FreeSWITCH 1.10.12's source (mod_event_socket.c api_exec and the ``bgapi``
  command, mod_commands.c originate_function, switch_event.c switch_event_serialize).

What a real FreeSWITCH is tested on (the driver, `<Record>`, `<Start><Recording>`, `<Dial>`,
REST: tests that use ``freeswitch_real``) this server no longer models: no ``bridge``, DTMF,
``send_dtmf``, ``multiset``, silence detection, stereo or write-only recordings.

Time is virtual: one second of call time takes `scale` real seconds, and event timestamps are
virtual, so a 30 s recording is 0.6 s of test time at scale 0.02.

Its modules, one job each: `codec` (the wire: frames, URL-encoding, event prologs, and the lab
transcripts' reference frames, loaded from ``transcripts/*.esl``), `channel` (a channel's state,
caller profile, variables and events), `plans` (what a test scripts: the caller during a
``record``, the callees of an ``originate``), `media` (the WAV files FreeSWITCH writes), `apps`
(the dialplan applications), `recording` (``uuid_record``'s media bugs), `call` (one call on
the outbound socket), `inbound` (one inbound connection's subscriptions and filters),
`originate` (``bgapi originate``) and `server` (the inbound event socket, `FakeFreeSwitch`).
"""
