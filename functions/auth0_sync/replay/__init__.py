"""Running dead letters again, shared by `auth0-sync replay`, `auth0-sync redrive` and the
scheduled redrive function (which is why it ships with the handlers):

- `letters`: what is in the DLQ: each message, whatever its shape, read into a `DeadLetter`,
  and grouped by event;
- `queue`: the DLQ as a reader sees it: receive and hold, release, delete;
- `pacing`: the rate limit shared with live traffic, and the time budget of a run;
- `replayer`: the safe loop: delete only after success, a new failure replaces the message
  with its history kept, one replay per event;
- `concurrent`: the same loop with independent users' events at once (each user's in
  order), so that a batching CRM carries their calls in batch requests;
- `lambda_target`: run an event in the deployed handler function (synchronous Invoke).
"""
