"""The local runtime: the whole pipeline on one machine, no AWS account.

  emulator.py     moto's server on 127.0.0.1 (with S3 notification fidelity: versionId, sequencer)
  environment.py  point boto3 at the emulator
  provision.py    the stack's resources, from the same settings and route table
  transcribe_service.py  Amazon Transcribe's batch API on 127.0.0.1 (jobs, vocabularies, events), with
    transcribe_api.py           its JSON protocol, HTTP server, errors and paging
    transcribe_jobs.py          the job record and Start request validation
    transcribe_vocabularies.py  custom vocabularies (standard and medical)
    transcribe_output.py        speaker attribution and the Transcribe output document
  whisper_engine.py      the local speech engine behind it (faster-whisper, packaged models)
  media_decoding.py      media checks and decoding to 16 kHz (whole or streamed)
  pollers.py      Lambda's SQS event source mapping, per route; timers for scheduled routes
  alarms.py       DLQ alarm -> SNS, like the stack's CloudWatch alarm
  outbox.py       SNS email subscription -> .eml files
  logs.py         handler output -> <state>/logs/runtime.log
  runtime.py      all of the above in one process (`LocalRuntime`, `serve`)
  daemon.py       the background process behind `medscribe local up/down`
  state.py        the state folder and runtime.json
  uploads.py      folder uploads and waiting for terminal statuses
"""
