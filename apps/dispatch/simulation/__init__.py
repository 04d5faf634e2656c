"""A simulated delivery fleet for the demo: ``manage.py simulate_fleet``.

    noise.py        GPS error, calibrated on real phone traces (calibration.py measures them)
    movement.py     where a vehicle is at a sim time on a leg between stops
    outcomes.py     whether a delivery attempt succeeds, and why not
    client.py       the I/O: login, JSON API, the driver WebSocket with reconnect and backlog
    driver.py       one driver's day as a state machine over the client
    fleet.py        all drivers at once on one event loop
"""
