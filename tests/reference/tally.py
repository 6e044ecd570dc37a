"""tally.py: the pass/fail count of the reference checks that end with "N passed, M failed".

    from tally import check, summary
    check(cond, 'what was checked')     # counts; prints FAIL and the text when cond is false
    sys.exit(summary())                 # prints the counts; 1 if any check failed
"""
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print('FAIL', what)


def summary():
    print(f'{passed} passed, {failed} failed')
    return 1 if failed else 0
