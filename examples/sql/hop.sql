-- A rolling one-minute view, every 10 seconds: readings, mean and peak per sensor; published.
-- rill query tcp://127.0.0.1:5555 --file examples/sql/hop.sql   (rows on tcp://127.0.0.1:5556)
CREATE TABLE readings (sensor STRING, celsius DOUBLE, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
  WITH ('topic' = 'plant/readings', 'format' = 'json');
CREATE TABLE sensor_minute (sensor STRING, window_end TIMESTAMP(3), n BIGINT, mean DOUBLE, peak DOUBLE)
  WITH ('topic' = 'plant/sensor-minute', 'endpoint' = 'tcp://127.0.0.1:5556');
INSERT INTO sensor_minute
SELECT sensor, window_end, COUNT(*), AVG(celsius), MAX(celsius)
  FROM TABLE(HOP(TABLE readings, DESCRIPTOR(ts), INTERVAL '10' SECOND, INTERVAL '1' MINUTE))
  GROUP BY sensor, window_start, window_end;
