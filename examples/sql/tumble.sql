-- Total score and plays per team every 10 seconds, for teams that played at least twice.
-- rill query tcp://127.0.0.1:5555 --file examples/sql/tumble.sql
CREATE TABLE scores (team STRING, score INT, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
  WITH ('topic' = 'game/scores', 'format' = 'json');
SELECT team, window_start, window_end, SUM(score) AS total, COUNT(*) AS plays
  FROM TABLE(TUMBLE(TABLE scores, DESCRIPTOR(ts), INTERVAL '10' SECOND))
  GROUP BY team, window_start, window_end
  HAVING COUNT(*) >= 2;
