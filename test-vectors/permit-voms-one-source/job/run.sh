#!/bin/sh
echo "analysing $2 events"
