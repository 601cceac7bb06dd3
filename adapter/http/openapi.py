"""The OpenAPI 3.0 description of what the adapter serves (``GET /openapi.json``).

Kept beside the routes it describes (`adapter.http.api`, `adapter.http.app`); a schemathesis run
in the tests checks the running server against it."""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document"]

_SID = {"CA": r"^CA[0-9a-f]{32}$", "RE": r"^RE[0-9a-f]{32}$", "AC": r"^AC[0-9a-f]{32}$",
        "TR": r"^TR[0-9a-f]{32}$"}
_NULLABLE_STR = {"type": "string", "nullable": True}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": _json(_ref("Error"), "Bad parameter value, or the call is not in progress (21220)"),
    "401": _json(_ref("Error"), "Missing or wrong credentials (20003)"),
    "404": _json(_ref("Error"), "No such resource (20404)"),
}


def _path_param(name: str, pattern: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "string", "pattern": pattern}}


def _form(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return {"required": bool(required), "content": {
        "application/x-www-form-urlencoded": {"schema": schema}}}


def _enum(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


_PAGING = [
    {"name": "PageSize", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                   "maximum": 1000}},
    {"name": "Page", "in": "query", "schema": {"type": "integer", "minimum": 0,
                                               "maximum": 100000}},
]
_URL = {"type": "string", "format": "uri", "pattern": "^https?://[a-z0-9.-]+(:[0-9]+)?/"}
_RECORDING_PARAMS = {
    "RecordingStatusCallback": _URL,
    "RecordingStatusCallbackEvent": _enum("in-progress", "completed", "absent"),
    "RecordingStatusCallbackMethod": _enum("GET", "POST"),
    "Trim": _enum("trim-silence", "do-not-trim"),
    "RecordingChannels": _enum("mono", "dual"),
    "RecordingTrack": _enum("inbound", "outbound", "both"),
}


def _page_schema(key: str, item: str) -> dict[str, Any]:
    return {"type": "object", "required": [key, "page", "page_size", "uri", "first_page_uri"],
            "properties": {
                key: {"type": "array", "items": _ref(item)},
                "page": {"type": "integer"}, "page_size": {"type": "integer"},
                "start": {"type": "integer"}, "end": {"type": "integer"},
                "uri": {"type": "string"}, "first_page_uri": {"type": "string"},
                "next_page_uri": _NULLABLE_STR, "previous_page_uri": _NULLABLE_STR,
            }}


_TRANSCRIPTION = {
    "type": "object", "required": ["sid", "account_sid", "recording_sid", "status", "uri"],
    "properties": {
        "sid": {"type": "string", "pattern": _SID["TR"]}, "account_sid": {"type": "string"},
        "recording_sid": {"type": "string"}, "status": _enum("in-progress", "completed", "failed"),
        "transcription_text": _NULLABLE_STR, "duration": _NULLABLE_STR,
        "type": {"type": "string"}, "uri": {"type": "string"}, "date_created": _NULLABLE_STR}}


def _transcription_paths(under: str, params: list[dict[str, Any]], name: str
                         ) -> dict[str, Any]:
    """List, fetch (JSON or text) and delete of the Transcriptions under `under`."""
    sid = _path_param("Sid", r"^TR[0-9a-f]{32}(\.(json|txt))?$")
    return {
        f"{under}/Transcriptions.json": {"get": {
            "operationId": f"list{name}Transcriptions", "parameters": [*params, *_PAGING],
            "responses": {"200": _json(_ref("TranscriptionPage"), "A page"), **_ERRORS}}},
        f"{under}/Transcriptions/{{Sid}}": {
            "get": {"operationId": f"fetch{name}Transcription", "parameters": [*params, sid],
                    "responses": {"200": {"description": "JSON, or the text (.txt)", "content": {
                        "application/json": {"schema": _ref("Transcription")},
                        "text/plain": {}}}, **_ERRORS}},
            "delete": {"operationId": f"delete{name}Transcription", "parameters": [*params, sid],
                       "responses": {"204": {"description": "Deleted"}, **_ERRORS}}},
    }


def openapi_document() -> dict[str, Any]:
    account = "/2010-04-01/Accounts/{AccountSid}"
    acc = _path_param("AccountSid", _SID["AC"])
    call = _path_param("CallSid", r"^CA[0-9a-f]{32}(\.json)?$")
    rec = _path_param("Sid", r"^(RE[0-9a-f]{32}|Twilio\.CURRENT)(\.json)?$")
    media = _path_param("Sid", r"^RE[0-9a-f]{32}(\.(wav|mp3|json))?$")
    security: list[dict[str, list[str]]] = [{"basicAuth": []}]
    return {
        "openapi": "3.0.3",
        "info": {"title": "twiml-pbx-adapter: Twilio-compatible REST API (2010-04-01)",
                 "version": "0.1.0"},
        "components": {
            "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}},
            "schemas": {
                "Error": {"type": "object", "required": ["code", "message", "status"],
                          "properties": {"code": {"type": "integer"},
                                         "message": {"type": "string"},
                                         "more_info": {"type": "string"},
                                         "status": {"type": "integer"}}},
                "Recording": {"type": "object",
                              "required": ["sid", "account_sid", "call_sid", "status", "uri"],
                              "properties": {
                                  "sid": {"type": "string", "pattern": _SID["RE"]},
                                  "account_sid": {"type": "string"},
                                  "call_sid": {"type": "string"},
                                  "status": _enum("in-progress", "paused", "stopped",
                                                  "processing", "completed", "absent",
                                                  "deleted"),
                                  "channels": {"type": "integer"},
                                  "duration": _NULLABLE_STR, "source": {"type": "string"},
                                  "track": {"type": "string"}, "uri": {"type": "string"},
                                  "media_url": {"type": "string"},
                                  "date_created": _NULLABLE_STR, "start_time": _NULLABLE_STR,
                                  "error_code": {"type": "integer", "nullable": True}}},
                "Call": {"type": "object", "required": ["sid", "account_sid", "status", "uri"],
                         "properties": {
                             "sid": {"type": "string", "pattern": _SID["CA"]},
                             "account_sid": {"type": "string"},
                             "parent_call_sid": _NULLABLE_STR,
                             "status": {"type": "string"}, "direction": {"type": "string"},
                             "to": {"type": "string"}, "from": {"type": "string"},
                             "duration": _NULLABLE_STR, "uri": {"type": "string"}}},
                "RecordingPage": _page_schema("recordings", "Recording"),
                "CallPage": _page_schema("calls", "Call"),
                "Transcription": _TRANSCRIPTION,
                "TranscriptionPage": _page_schema("transcriptions", "Transcription"),
            },
        },
        "security": security,
        "paths": {
            f"{account}/Recordings.json": {"get": {
                "operationId": "listRecordings",
                "parameters": [acc, *_PAGING,
                               {"name": "CallSid", "in": "query",
                                "schema": {"type": "string", "pattern": _SID["CA"]}},
                               {"name": "DateCreated", "in": "query",
                                "schema": {"type": "string", "format": "date"}}],
                "responses": {"200": _json(_ref("RecordingPage"), "A page"), **_ERRORS}}},
            f"{account}/Recordings/{{Sid}}": {
                "get": {"operationId": "fetchRecordingMedia", "parameters": [acc, media],
                        "responses": {"200": {"description": "WAV, MP3 or JSON", "content": {
                            "audio/x-wav": {}, "audio/mpeg": {},
                            "application/json": {"schema": _ref("Recording")}}}, **_ERRORS}},
                "delete": {"operationId": "deleteRecording", "parameters": [acc, media],
                           "responses": {"204": {"description": "Deleted"}, **_ERRORS}}},
            f"{account}/Calls.json": {
                "get": {"operationId": "listCalls", "parameters": [acc, *_PAGING],
                        "responses": {"200": _json(_ref("CallPage"), "A page"), **_ERRORS}},
                "post": {"operationId": "createCall", "parameters": [acc],
                         "requestBody": _form({
                             "To": {"type": "string"}, "From": {"type": "string"},
                             "Url": _URL, "Method": _enum("GET", "POST"),
                             "Twiml": {"type": "string", "maxLength": 4000},
                             "StatusCallback": _URL, "Timeout": {"type": "integer"},
                             "Record": {"type": "boolean"}, **_RECORDING_PARAMS,
                         }, ["To", "From"]),
                         "responses": {"201": _json(_ref("Call"), "Queued"), **_ERRORS}}},
            f"{account}/Calls/{{CallSid}}": {
                "get": {"operationId": "fetchCall", "parameters": [acc, call],
                        "responses": {"200": _json(_ref("Call"), "The call"), **_ERRORS}},
                "post": {"operationId": "updateCall", "parameters": [acc, call],
                         "requestBody": _form({"Status": _enum("completed", "canceled"),
                                               "Url": _URL, "Method": _enum("GET", "POST"),
                                               "Twiml": {"type": "string", "maxLength": 4000}}),
                         "responses": {"200": _json(_ref("Call"), "Updated"), **_ERRORS}}},
            f"{account}/Calls/{{CallSid}}/Recordings.json": {
                "get": {"operationId": "listCallRecordings", "parameters": [acc, call, *_PAGING],
                        "responses": {"200": _json(_ref("RecordingPage"), "A page"), **_ERRORS}},
                "post": {"operationId": "createCallRecording", "parameters": [acc, call],
                         "requestBody": _form(_RECORDING_PARAMS),
                         "responses": {"201": _json(_ref("Recording"), "Started"), **_ERRORS}}},
            f"{account}/Calls/{{CallSid}}/Recordings/{{Sid}}": {
                "get": {"operationId": "fetchCallRecording", "parameters": [acc, call, rec],
                        "responses": {"200": _json(_ref("Recording"), "The recording"),
                                      **_ERRORS}},
                "post": {"operationId": "updateCallRecording", "parameters": [acc, call, rec],
                         "requestBody": _form({"Status": _enum("paused", "in-progress",
                                                               "stopped"),
                                               "PauseBehavior": _enum("skip", "silence")},
                                              ["Status"]),
                         "responses": {"200": _json(_ref("Recording"), "Updated"), **_ERRORS}},
                "delete": {"operationId": "deleteCallRecording", "parameters": [acc, call, rec],
                           "responses": {"204": {"description": "Deleted"}, **_ERRORS}}},
            **_transcription_paths(account, [acc], ""),
            **_transcription_paths(f"{account}/Recordings/{{RecordingSid}}",
                                   [acc, _path_param("RecordingSid", _SID["RE"])], "Recording"),
        },
    }
