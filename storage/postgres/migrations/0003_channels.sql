-- Channel events expire after their channel's history; job events go with their job.
ALTER TABLE events ADD COLUMN expires_at BIGINT;
CREATE INDEX events_expires ON events (expires_at) WHERE expires_at IS NOT NULL;

-- The highest cursor retention deleted from each stream.
CREATE TABLE stream_floors (
  tenant TEXT NOT NULL,
  stream TEXT NOT NULL,
  floor  BIGINT NOT NULL,
  PRIMARY KEY (tenant, stream)
);
