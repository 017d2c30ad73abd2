-- The Batch API (issue 30): files of requests in, files of answers out, run durably by any instance.

-- A file: its bytes are in batch_file_chunk, in order, so that neither an upload nor a download holds it whole.
-- purpose 'batch' is an upload (kept until deleted); 'batch_output' a batch's output or error file (kept until expires_at).
CREATE TABLE batch_file (
    id         text        PRIMARY KEY,
    user_id    bigint      NOT NULL CHECK (user_id > 0),
    filename   text        NOT NULL,
    purpose    text        NOT NULL CHECK (purpose IN ('batch', 'batch_output')),
    bytes      bigint      NOT NULL CHECK (bytes >= 0),
    lines      int         NOT NULL CHECK (lines >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz
);
CREATE INDEX batch_file_newest_first ON batch_file (user_id, created_at DESC, id DESC);
CREATE INDEX batch_file_expiring ON batch_file (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE batch_file_chunk (
    file_id text  NOT NULL REFERENCES batch_file (id) ON DELETE CASCADE,
    seq     int   NOT NULL,
    data    bytea NOT NULL,
    PRIMARY KEY (file_id, seq)
);

-- A batch: its lifecycle's times as OpenAI's Batch object has them. lease_owner/lease_until: the instance validating or
-- finishing it; another takes it over once the lease has ended. not_before: its user is over a limit until then, so
-- its lines wait rather than fail.
CREATE TABLE batch (
    id                text        PRIMARY KEY,
    user_id           bigint      NOT NULL CHECK (user_id > 0),
    endpoint          text        NOT NULL,
    input_file_id     text        NOT NULL,
    completion_window text        NOT NULL,
    metadata          text,
    status            text        NOT NULL CHECK (status IN ('validating', 'failed', 'in_progress', 'finalizing', 'completed',
                                                             'expired', 'cancelling', 'cancelled')),
    errors            text,
    output_file_id    text,
    error_file_id     text,
    total             int         NOT NULL DEFAULT 0,
    -- the lines' ends once it has ended (its lines are deleted with its files' retention)
    completed         int,
    failed            int,
    created_at        timestamptz NOT NULL DEFAULT now(),
    in_progress_at    timestamptz,
    expires_at        timestamptz NOT NULL,
    finalizing_at     timestamptz,
    completed_at      timestamptz,
    failed_at         timestamptz,
    expired_at        timestamptz,
    cancelling_at     timestamptz,
    cancelled_at      timestamptz,
    not_before        timestamptz,
    lease_owner       uuid,
    lease_until       timestamptz
);
CREATE INDEX batch_newest_first ON batch (user_id, created_at DESC, id DESC);
CREATE INDEX batch_unfinished ON batch (status) WHERE status IN ('validating', 'in_progress', 'finalizing', 'cancelling');

-- A batch's lines, the queue the instances work from: a queued line is claimed with a lease (FOR UPDATE SKIP LOCKED),
-- and claimed again by anyone once the lease has ended. request_id is fixed at the first claim: the usage row's id.
-- result is the line of the output file (state done) or error file (state failed).
CREATE TABLE batch_line (
    batch_id    text        NOT NULL REFERENCES batch (id) ON DELETE CASCADE,
    line        int         NOT NULL,
    custom_id   text        NOT NULL,
    url         text        NOT NULL,
    body        text        NOT NULL,
    state       text        NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'done', 'failed')),
    request_id  uuid,
    lease_owner uuid,
    lease_until timestamptz,
    result      text,
    PRIMARY KEY (batch_id, line)
);
CREATE INDEX batch_line_queued ON batch_line (batch_id, line) WHERE state = 'queued';
CREATE UNIQUE INDEX batch_line_request_id ON batch_line (request_id);

-- A batch line is billed once, however often it ran: a line that ran again after its instance died has the same
-- request_id but another served time, which token_usage's (request_id, created_at) key would let through. The trigger
-- skips such a second row before it is inserted, so neither usage_daily nor a budget charge (which charges only the
-- rows written) sees it.
CREATE TABLE batch_line_billed (
    request_id uuid PRIMARY KEY
);

CREATE FUNCTION token_usage_bills_batch_lines_once() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM batch_line WHERE request_id = NEW.request_id) THEN
        INSERT INTO batch_line_billed (request_id) VALUES (NEW.request_id) ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER token_usage_bills_batch_lines_once
    BEFORE INSERT ON token_usage
    FOR EACH ROW EXECUTE FUNCTION token_usage_bills_batch_lines_once();
