-- Today's revenue so far per shop, every hour (a day-long period growing by one hour).
-- rill query tcp://127.0.0.1:5555 --file examples/sql/cumulate.sql
CREATE TABLE sales (shop STRING, amount DOUBLE, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' MINUTE)
  WITH ('topic' = 'shop/sales', 'format' = 'json');
SELECT shop, window_start, window_end, SUM(amount) AS revenue, COUNT(*) AS sales
  FROM TABLE(CUMULATE(TABLE sales, DESCRIPTOR(ts), INTERVAL '1' HOUR, INTERVAL '1' DAY))
  GROUP BY shop, window_start, window_end;
