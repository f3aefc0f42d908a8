/// A calendar date and time of day, as a real-time clock counts it: the
/// value `CMOSRTC` asks its injected clock for on every read of a time register.
///
/// Fields are plain numbers, not yet encoded as BCD. The RTC reduces each one
/// to its register's range, so an out-of-range field reads as a wrong time,
/// never as a trap.
public struct RTCDateTime: Codable, Hashable, Sendable {
    /// The full year, such as 2025. The RTC splits it into year (0x09) and century (0x32).
    public var year: Int
    /// 1 (January) to 12.
    public var month: Int
    /// Day of the month, 1 to 31.
    public var day: Int
    /// 0 to 23; the RTC converts to 12-hour form if the guest asks.
    public var hour: Int
    /// 0 to 59.
    public var minute: Int
    /// 0 to 59.
    public var second: Int
    /// Day of the week as register 0x06 counts it: 1 = Sunday to 7 = Saturday
    /// (C's `tm_wday + 1`).
    public var weekday: Int

    /// A date and time from its fields, taken as given.
    public init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, weekday: Int) {
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
        self.weekday = weekday
    }

    /// The UTC date and time `secondsSince1970` seconds after 1970-01-01 00:00:00
    /// (a POSIX `time_t`), in the proleptic Gregorian calendar.
    ///
    /// Pure arithmetic (Howard Hinnant's `civil_from_days`), so the host side
    /// can build the RTC's clock from `clock_gettime` without the Devices
    /// module importing Glibc. Defined for every `Int64`.
    public init(secondsSince1970: Int64) {
        let secondsPerDay: Int64 = 86_400
        var days = secondsSince1970 / secondsPerDay
        var secondOfDay = secondsSince1970 % secondsPerDay
        if secondOfDay < 0 {
            secondOfDay += secondsPerDay
            days -= 1
        }
        // Count from 0000-03-01 so that the leap day ends each 400-year era.
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let marchBasedMonth = (5 * dayOfYear + 2) / 153
        let month = marchBasedMonth < 10 ? marchBasedMonth + 3 : marchBasedMonth - 9
        // 1970-01-01 was a Thursday: weekday 5 when Sunday is 1.
        var weekdayFromSunday = (days + 4) % 7
        if weekdayFromSunday < 0 { weekdayFromSunday += 7 }
        self.init(
            year: Int(yearOfEra + era * 400 + (month <= 2 ? 1 : 0)),
            month: Int(month),
            day: Int(dayOfYear - (153 * marchBasedMonth + 2) / 5 + 1),
            hour: Int(secondOfDay / 3600),
            minute: Int(secondOfDay / 60 % 60),
            second: Int(secondOfDay % 60),
            weekday: Int(weekdayFromSunday + 1))
    }

    /// The POSIX time of this date and time in UTC: the inverse of
    /// `init(secondsSince1970:)` (Howard Hinnant's `days_from_civil`).
    ///
    /// `weekday` is ignored, since the date decides it. Fields outside their
    /// ranges carry over as `mktime` does (second 60 is the next minute's 0);
    /// arithmetic wraps, so even absurd fields give some time, never a trap.
    public var secondsSince1970: Int64 {
        let month = Int64(truncatingIfNeeded: self.month)
        let year = Int64(truncatingIfNeeded: self.year) &- (month <= 2 ? 1 : 0)
        // Count from 0000-03-01 so that the leap day ends each 400-year era.
        let era = (year >= 0 ? year : year &- 399) / 400
        let yearOfEra = year &- era &* 400
        let marchBasedMonth = month > 2 ? month &- 3 : month &+ 9
        let dayOfYear = (153 &* marchBasedMonth &+ 2) / 5 &+ Int64(truncatingIfNeeded: day) &- 1
        let dayOfEra = yearOfEra &* 365 &+ yearOfEra / 4 &- yearOfEra / 100 &+ dayOfYear
        let days = era &* 146_097 &+ dayOfEra &- 719_468
        return days &* 86_400 &+ Int64(truncatingIfNeeded: hour) &* 3600 &+ Int64(truncatingIfNeeded: minute) &* 60
            &+ Int64(truncatingIfNeeded: second)
    }
}
