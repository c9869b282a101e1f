-- A price dip and recovery per symbol, as MATCH_RECOGNIZE. This parses (rill_sql) but does not
-- run yet: `rill query` answers "MATCH_RECOGNIZE is not executed yet (it parses)".
CREATE TABLE ticks (symbol STRING, price DOUBLE, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
  WITH ('topic' = 'md/ticks', 'format' = 'json');
SELECT *
  FROM ticks MATCH_RECOGNIZE (
    PARTITION BY symbol ORDER BY ts
    MEASURES FIRST(DOWN.price) AS top, LAST(DOWN.price) AS bottom, LAST(UP.price) AS recovered
    ONE ROW PER MATCH
    AFTER MATCH SKIP PAST LAST ROW
    PATTERN (DOWN{2,} UP+) WITHIN INTERVAL '1' MINUTE
    DEFINE DOWN AS price < PREV(price), UP AS price > PREV(price));
