-- User sessions that end after 30 minutes without a click: length, clicks and distinct pages.
-- rill query tcp://127.0.0.1:5555 --file examples/sql/session.sql
CREATE TABLE clicks (user_id BIGINT, page STRING, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '10' SECOND)
  WITH ('topic' = 'web/clicks', 'format' = 'json');
SELECT user_id, window_start, window_end, COUNT(*) AS clicks, COUNT(DISTINCT page) AS pages
  FROM TABLE(SESSION(TABLE clicks, DESCRIPTOR(ts), INTERVAL '30' MINUTE))
  GROUP BY user_id, window_start, window_end;
