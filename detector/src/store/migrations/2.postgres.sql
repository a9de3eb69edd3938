-- Version 2: indexes for reading runs in time order and for the places a run's sightings name.
CREATE INDEX run_time ON run (generated_at, id);
CREATE INDEX sighting_location ON sighting (location_id);
