#!/bin/bash
# Measures the cost of synchronous COMMITs in a tidemark-shaped batch (see README.md).
# Needs psql and a trust-auth server on 127.0.0.1:5432; creates and drops the database synccost.
# 200 migrations in one message, each BEGIN; CREATE TABLE; INSERT row; COMMIT — sync vs async commits.
gen() { for i in $(seq 1 200); do echo "BEGIN;"; [ "$1" = async ] && [ $i -lt 200 ] && echo "SET LOCAL synchronous_commit = off;"; echo "CREATE TABLE t$i (id bigserial primary key, a text, b int); INSERT INTO log VALUES ($i); COMMIT;"; done; }
for mode in sync async sync async sync async sync async sync async; do
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS synccost" -c "CREATE DATABASE synccost" postgres
  psql -h 127.0.0.1 -U postgres -qc "CREATE TABLE log (v int)" synccost
  sql=$(gen $mode)
  s=$(date +%s%N); psql -h 127.0.0.1 -U postgres -q -c "$sql" synccost; e=$(date +%s%N)
  echo "$mode $(( (e-s)/1000000 ))"
done
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS synccost" postgres
